"""SageMaker HyperPod (issue 26 point 3): the reports queue the jobs' meters send to, and the HyperPod function.

- ``Reports`` (SQS, SQS-managed encryption so a job's role needs no key grant, TLS only): ``sqs:SendMessage`` from
  IAM role sessions of this account (single-account mode) or of the organization (``aws:PrincipalOrgID``), nothing
  else; an IAM user's or a service's send is denied (``aws:PrincipalType`` must be ``AssumedRole``), so every
  message's ``SenderId`` is ``<role unique id>:<session>``, which the function checks against IAM. Its dead-letter
  queue holds refused reports with their reason.
- The HyperPod function consumes the queue (partial batch failures), and runs once a day to compare every cluster's
  previous day with its reported jobs. It reads clusters (``sagemaker:DescribeCluster`` / ``ListClusterNodes`` on
  this account's clusters, ``sagemaker:ListClusters``) and roles (``iam:GetRole`` on this account's roles), writes
  ``records/`` (its IAM grant: ``hyperpod.*`` records only) and ``clusters/`` once, reads records and the lineage
  index, describes a declared parent training job, announces records like the classifier and dead-letters refused
  reports. Nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from flopsmeter.audit.keys import CLUSTERS_PREFIX, HYPERPOD_RECORD_PREFIX
from flopsmeter.contract import member_reader_role_name
from infra.config import DeployConfig
from infra.constructs.audit_bucket import INDEX_ROOT, NOTIFICATIONS_ROOT, RECORDS_ROOT, AuditBucket
from infra.constructs.functions import FunctionOptions, ServiceFunction
from infra.constructs.monitoring import AlertTopic
from infra.constructs.nag import acknowledge, skip_checkov
from infra.constructs.service import grant_announce

CLUSTERS_ROOT = CLUSTERS_PREFIX.split("/", 1)[0] + "/"  # "clusters/"
HYPERPOD_RECORDS = f"{RECORDS_ROOT}*/{HYPERPOD_RECORD_PREFIX}"  # records/…/hyperpod.<cluster>.<job>.json
SCHEDULE = events.Schedule.cron(minute="20", hour="0")  # 00:20 UTC: yesterday is over
REPORTS_MAX_RECEIVE_COUNT = 5
REPORTS_MAX_CONCURRENCY = 2  # reports are few (one per job); IAM GetRole and DescribeCluster are rate-limited
READ_CALLS = ("sagemaker:DescribeCluster", "sagemaker:ListClusterNodes")


class HyperPodReports(Construct):
    """Exposes ``queue``, ``dead_letter_queue``, ``function`` and ``retention_writer`` (for the bucket policy)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        base: FunctionOptions,
        environment: Mapping[str, str],
        audit: AuditBucket,
        alerts: AlertTopic,
        organization: DeployConfig | None,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
            removal_policy=removal_policy,
        )
        self.queue = sqs.Queue(
            self,
            "Reports",
            encryption=sqs.QueueEncryption.SQS_MANAGED,  # a job's role sends without a KMS grant, from any account
            enforce_ssl=True,
            visibility_timeout=Duration.minutes(2),
            retention_period=Duration.days(14),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=REPORTS_MAX_RECEIVE_COUNT
            ),
            removal_policy=removal_policy,
        )
        self._senders(organization.organization_id if organization else None)
        acknowledge(self.dead_letter_queue, "AwsSolutions-SQS3", "This is the reports queue's dead-letter queue.")
        for queue in (self.queue, self.dead_letter_queue):
            skip_checkov(
                queue,
                "CKV_AWS_27",
                "Encrypted at rest with SQS-managed keys (SSE-SQS): a job's role in any account of the organization "
                "sends without a grant on a customer key; reports carry FLOPs figures, no personal or secret data.",
            )
        self.function = ServiceFunction(
            self,
            "Function",
            replace(
                base,
                handler="lambdas.hyperpod.handler.lambda_handler",
                description="Records HyperPod jobs their meters report; compares each cluster's day with its ceiling",
                environment={**environment, "DEAD_LETTER_QUEUE_URL": self.dead_letter_queue.queue_url},
                timeout=Duration.minutes(2),
            ),
        )
        self.function.function.add_event_source(
            sources.SqsEventSource(
                self.queue, batch_size=10, report_batch_item_failures=True, max_concurrency=REPORTS_MAX_CONCURRENCY
            )
        )
        self.function.run_on_schedule(SCHEDULE, "FLOPs Meter HyperPod: compare every cluster's day with its reports")
        self._grant(audit, alerts)
        if organization is not None:
            self._organization(organization)
        self.retention_writer = (self.function.role, (RECORDS_ROOT, CLUSTERS_ROOT))
        skip_checkov(
            self.function.function,
            "CKV_AWS_116",
            "SQS event source (its queue has a redrive DLQ; refused reports are dead-lettered with the reason) and a "
            "daily idempotent schedule; a Lambda DLQ applies to asynchronous invocations only.",
        )

    def _organization(self, cfg: DeployConfig) -> None:
        """Organization mode: the member accounts and regions whose clusters the daily pass compares, through the member
        reader role (``sts:AssumeRole`` on it is granted by ``OrganizationIntake``, which trusts this role)."""
        fn = self.function.function
        fn.add_environment("MEMBER_ROLE_NAME", member_reader_role_name(cfg.stage))
        fn.add_environment("MEMBER_REGIONS", ",".join(cfg.member_regions))
        if cfg.member_accounts:
            fn.add_environment("MEMBER_ACCOUNTS", ",".join(cfg.member_accounts))
        else:
            self.function.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="ListOrganizationAccounts", actions=["organizations:ListAccounts"], resources=["*"]
                )
            )

    def _senders(self, organization_id: str | None) -> None:
        """Who may send: role sessions of this account, or of the organization; nobody else."""
        where = (
            {"StringEquals": {"aws:PrincipalOrgID": organization_id}}
            if organization_id
            else {"StringEquals": {"aws:PrincipalAccount": Aws.ACCOUNT_ID}}
        )
        self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="JobRolesSendReports",
                principals=[iam.AnyPrincipal()],
                actions=["sqs:SendMessage", "sqs:GetQueueUrl"],
                resources=[self.queue.queue_arn],
                conditions=where,
            )
        )
        self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenySendersThatAreNotRoleSessions",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn],
                conditions={"StringNotEquals": {"aws:PrincipalType": "AssumedRole"}},
            )
        )

    def _grant(self, audit: AuditBucket, alerts: AlertTopic) -> None:
        role = self.function.role
        audit.grant_write_once(role, "WriteHyperPodRecordsOnce", HYPERPOD_RECORDS, CLUSTERS_ROOT)
        audit.grant_read(role, "ReadRecords", RECORDS_ROOT, INDEX_ROOT, NOTIFICATIONS_ROOT, actions=("s3:GetObject",))
        account = f"arn:{Aws.PARTITION}:sagemaker:{Aws.REGION}:{Aws.ACCOUNT_ID}"
        statements = (
            ("HyperPodClusters", list(READ_CALLS), [f"{account}:cluster/*"]),
            ("ListHyperPodClusters", ["sagemaker:ListClusters"], ["*"]),
            ("ReportingRoles", ["iam:GetRole"], [f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/*"]),
            (
                "DeclaredParentJob",
                ["sagemaker:DescribeTrainingJob", "sagemaker:ListTags"],
                [f"{account}:training-job/*"],
            ),
            ("DeadLetterRefusedReports", ["sqs:SendMessage"], [self.dead_letter_queue.queue_arn]),
        )
        for sid, actions, resources in statements:
            role.add_to_principal_policy(iam.PolicyStatement(sid=sid, actions=actions, resources=resources))
        grant_announce(role, alerts)
        for resource, reason in (
            ("*", "ListClusters, organizations:ListAccounts and X-Ray trace writes have no resource-level scope."),
            ("arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:cluster/*",
             "Every HyperPod cluster in this account is compared with its reports (read-only)."),
            ("arn:<AWS::Partition>:iam::<AWS::AccountId>:role/*",
             "Any role of this account may send a report; GetRole confirms the sender's role id (read-only)."),
            ("arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:training-job/*",
             "A reported job may declare a parent training job (lineage), read like the classifier does."),
        ):  # fmt: skip
            acknowledge(role, f"AwsSolutions-IAM5[Resource::{resource}]", reason)
