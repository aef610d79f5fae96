"""The service's three functions and what each may do (IAM, per role; nothing anywhere may delete audit objects).

- classifier: writes records/, notifications/ and the lineage index/ once (``AuditBucket.grant_write_once``) and
  reads them back with their retention (lineage, duplicate check), listing only those prefixes; SageMaker job
  facts, CloudWatch metric reads, CloudTrail ``LookupEvents``; ``events:PutEvents`` on the default bus for its own
  source and detail-type only; publishing to the alert topic; consuming its queue and dead-lettering a permanent
  failure.
- reconciler: runs the same classification code for jobs that have no record, so the classifier's grants
  except the queue, plus ``sagemaker:ListTrainingJobs``.
- digest: lists and reads records/ and digests/ (versions included), writes digests/ once, signs with the
  digest key (``SIGNING_ALGORITHM`` only).
CloudWatch metric reads, CloudTrail ``LookupEvents``, ``ListTrainingJobs`` and X-Ray trace writes have no
resource-level permissions, so their resource is "*".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from flopsmeter.contract import (
    RECORDED_EVENT_DETAIL_TYPE,
    RECORDED_EVENT_SOURCE,
    SERVICE_METRICS_NAMESPACE,
    SERVICE_NAME,
    member_reader_role_name,
)
from infra.config import LOG_RETENTION, DeployConfig
from infra.constructs.audit_bucket import DIGESTS_ROOT, INDEX_ROOT, NOTIFICATIONS_ROOT, RECORDS_ROOT, AuditBucket
from infra.constructs.functions import FunctionOptions, ServiceFunction
from infra.constructs.monitoring import AlertTopic
from infra.constructs.nag import acknowledge, skip_checkov
from infra.constructs.pipeline import CLASSIFIER_TIMEOUT, ClassifierQueue
from infra.constructs.provenance import PROVENANCE_ROOT
from infra.constructs.signing import DigestSigningKey
from infra.layer import powertools_layer

EVENT_BUS_NAME = "default"


@dataclass(frozen=True)
class ServiceResources:
    """What the functions use: every grant below is made by the construct that owns the resource."""

    audit: AuditBucket
    alerts: AlertTopic
    intake: ClassifierQueue
    signing: DigestSigningKey


class ServiceFunctions(Construct):
    """Exposes ``classifier``, ``reconciler``, ``digest`` (``ServiceFunction``s), ``all`` and ``log_key``.

    Concurrency: no function reserves any by default (a reservation fails on accounts whose unreserved pool would
    drop below Lambda's minimum); the classifier is throttled by its event source's ``MaximumConcurrency``
    (``classifier_max_concurrency``), and ``classifier_reserved_concurrency`` > 0 adds a reservation. The
    reconciler and the digest run hourly with timeouts far shorter than their schedules, and both are idempotent.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        asset_dir: str,
        resources: ServiceResources,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_key = _log_key(self, removal_policy)
        # the provenance and compaction functions (provenance.py, compaction.py) run the same way
        self.base = _base_options(self, config, resources.audit, asset_dir, self.log_key, removal_policy)
        classification = _classification_environment(self.base.environment, config, resources)
        self.classification_environment = classification  # the HyperPod function classifies too (hyperpod.py)
        self.classifier = ServiceFunction(
            self,
            "Classifier",
            _options(
                self.base,
                "classifier",
                "Classifies ended SageMaker training jobs; writes records",
                reserved_concurrency=config.classifier_reserved_concurrency or None,
                environment={
                    **classification,
                    "DEAD_LETTER_QUEUE_URL": resources.intake.dead_letter_queue.queue_url,
                    "MAX_RECEIVE_COUNT": str(resources.intake.max_receive_count),
                },
            ),
        )
        self.reconciler = ServiceFunction(
            self,
            "Reconciler",
            _options(
                self.base,
                "reconciler",
                "Classifies ended training jobs that have no record (a lost event never means a lost record)",
                timeout=Duration.minutes(10),
                environment={**classification, "RECONCILE_LOOKBACK_HOURS": str(config.reconcile_lookback_hours)},
            ),
        )
        self.digest = ServiceFunction(
            self,
            "Digest",
            _options(
                self.base,
                "digest",
                "Writes the hourly signed, hash-chained digest of new records",
                timeout=Duration.minutes(5),
                environment={**self.base.environment, "DIGEST_SIGNING_KEY_ID": resources.signing.key.key_id},
            ),
        )
        self.all = (self.classifier, self.reconciler, self.digest)
        self._explain_no_lambda_dead_letter_queues()
        self._trigger(config, resources.intake)
        self._grant(resources)
        if config.is_organization:
            self._organization(config)

    def _explain_no_lambda_dead_letter_queues(self) -> None:
        skip_checkov(
            self.classifier.function,
            "CKV_AWS_116",
            "SQS event source: a failed message goes to the queue's redrive DLQ (or the classifier dead-letters it "
            "itself); a Lambda DLQ applies to asynchronous invocations only.",
        )
        for fn in (self.reconciler, self.digest):
            skip_checkov(
                fn.function,
                "CKV_AWS_116",
                "Scheduled, idempotent catch-up run: a failed run raises the Errors alarm and the next run redoes "
                "its work; a DLQ would hold nothing to redrive.",
            )

    def _trigger(self, cfg: DeployConfig, intake: ClassifierQueue) -> None:
        """The classifier consumes the queue; the reconciler and the digest run on schedules."""
        intake.feed(self.classifier, max_concurrency=cfg.classifier_max_concurrency)
        self.reconciler.run_on_schedule(
            events.Schedule.rate(Duration.minutes(cfg.reconcile_every_minutes)),
            "FLOPs Meter reconciler: classify ended training jobs that have no record",
        )
        self.digest.run_on_schedule(
            events.Schedule.cron(minute="5"), "FLOPs Meter digest: hourly, five minutes past the hour"
        )

    def _organization(self, cfg: DeployConfig) -> None:
        """Organization mode: the member role's name, the reconciler's account rotation (docs/organization.md).

        The right to assume the member role is granted by ``infra.constructs.organization.OrganizationIntake``.
        """
        for fn in (self.classifier, self.reconciler):  # both read a job in its own account and region
            fn.function.add_environment("MEMBER_ROLE_NAME", member_reader_role_name(cfg.stage))
            fn.function.add_environment("MEMBER_REGIONS", ",".join(cfg.member_regions))
        cursor = ssm.StringParameter(
            self,
            "ReconcileCursor",
            parameter_name=f"/flopsmeter/{cfg.stage}/reconciler/cursor",
            string_value='{"next": 0}',
            description="FLOPs Meter reconciler: where the round-robin over member accounts resumes",
        )
        cursor.grant_read(self.reconciler.role)
        cursor.grant_write(self.reconciler.role)
        self.reconciler.function.add_environment("RECONCILE_CURSOR_PARAMETER", cursor.parameter_name)
        if cfg.member_accounts:
            self.reconciler.function.add_environment("MEMBER_ACCOUNTS", ",".join(cfg.member_accounts))
        _allow_any_resource(self.reconciler.role, "ListOrganizationAccounts", "organizations:ListAccounts")

    def _grant(self, res: ServiceResources) -> None:
        for fn in (self.classifier, self.reconciler):
            _grant_classify(fn.role, res)
        res.intake.grant_dead_letter(self.classifier.role)  # consuming the queue: granted by the event source
        _allow_any_resource(
            self.reconciler.role,
            "ListEndedJobs",
            "sagemaker:ListTrainingJobs",
            "bedrock:ListModelCustomizationJobs",
            *RECONCILER_BATCH_READS,
        )
        res.audit.grant_read(
            self.digest.role, "ReadRecordsAndDigests", RECORDS_ROOT, DIGESTS_ROOT, actions=_READ_VERSIONS
        )
        res.audit.grant_write_once(self.digest.role, "WriteDigestsOnce", DIGESTS_ROOT)
        res.signing.grant_sign(self.digest.role)
        # The bucket policy's retention writers (the stack adds the provenance function and applies them).
        self.retention_writers: list[tuple[iam.IRole, tuple[str, ...]]] = [
            (self.classifier.role, (RECORDS_ROOT, NOTIFICATIONS_ROOT, INDEX_ROOT)),
            (self.reconciler.role, (RECORDS_ROOT, NOTIFICATIONS_ROOT, INDEX_ROOT)),
            (self.digest.role, (DIGESTS_ROOT,)),
        ]
        for fn in self.all:
            acknowledge(
                fn.role,
                "AwsSolutions-IAM5[Resource::*]",
                "ListTrainingJobs, ListTrainingSessions, ListModelPackages, Batch DescribeServiceJob, "
                "DescribeJobQueues and ListServiceJobs, CloudWatch metric reads, CloudTrail LookupEvents and X-Ray "
                "trace writes have no resource-level scope.",
            )


_READ_VERSIONS = ("s3:GetObject", "s3:GetObjectVersion")
# issue 26: list and describe calls with no resource-level scope (running sessions, a session's checkpoints in its
# model package group, a Batch service job's attempts). The member accounts' reader role grants the same.
UNSCOPED_ISSUE26_READS = ("sagemaker:ListTrainingSessions", "sagemaker:ListModelPackages", "batch:DescribeServiceJob")
# issue 26: the reconciler's pass over ended AWS Batch service jobs: the SAGEMAKER_TRAINING job queues, and the jobs
# each holds in a status (granted on "*" like DescribeServiceJob; the member accounts' reader role grants the same).
RECONCILER_BATCH_READS = ("batch:DescribeJobQueues", "batch:ListServiceJobs")


def _base_options(
    scope: Construct,
    cfg: DeployConfig,
    audit: AuditBucket,
    asset_dir: str,
    log_key: kms.IKey,
    removal_policy: RemovalPolicy,
) -> FunctionOptions:
    """How every function runs, with what every settings model reads (``FunctionSettings``) + Powertools."""
    environment = {
        "AUDIT_BUCKET_NAME": audit.bucket.bucket_name,
        "RETENTION_YEARS": str(cfg.retention_years),
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": SERVICE_METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": cfg.log_level,
    }
    return FunctionOptions(
        handler="",
        description="",
        code=lambda_.Code.from_asset(asset_dir),
        layer=powertools_layer(scope),
        environment=environment,
        timeout=CLASSIFIER_TIMEOUT,
        log_retention=logs.RetentionDays[LOG_RETENTION[cfg.log_retention_days]],
        log_key=log_key,
        removal_policy=removal_policy,
    )


def _classification_environment(
    environment: Mapping[str, str], cfg: DeployConfig, res: ServiceResources
) -> dict[str, str]:
    """What ``ClassificationSettings`` reads (the classifier and the reconciler)."""
    return {
        **environment,
        "PRIMARY_POLICY": cfg.primary_policy,
        "APPROACHING_FRACTION": repr(cfg.approaching_fraction),
        "ALERT_TOPIC_ARN": res.alerts.topic.topic_arn,
        "EVENT_BUS_NAME": EVENT_BUS_NAME,
        "CLOUDTRAIL_MAX_WAIT_SECONDS": str(cfg.cloudtrail_max_wait_seconds),
        "DEPLOYMENT_MODE": cfg.deployment_mode,
        "ESTABLISHED_OUTSIDE_EU": "true" if cfg.established_outside_eu else "false",
        "ENERGY_PUE": repr(cfg.energy_pue),
        "ENERGY_POWER_UTILISATION": repr(cfg.energy_power_utilisation),
    }


def _log_key(scope: Construct, removal_policy: RemovalPolicy) -> kms.Key:
    """The functions' log groups' key: CloudWatch Logs may use it for this account's log groups only."""
    key = kms.Key(
        scope,
        "LogsKey",
        description="FLOPs Meter function logs (job names, principal ARNs)",
        enable_key_rotation=True,
        removal_policy=removal_policy,
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchLogsOfThisAccount",
            principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": (
                        f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*"
                    )
                }
            },
        )
    )
    return key


def _options(base: FunctionOptions, folder: str, description: str, **changes: object) -> FunctionOptions:
    handler = f"lambdas.{folder}.handler.lambda_handler"
    return replace(base, handler=handler, description=description, **changes)  # type: ignore[arg-type]


def _grant_classify(role: iam.IRole, res: ServiceResources) -> None:
    """What classifying a job takes (the classifier, and the reconciler which runs the same service code)."""
    res.audit.grant_write_once(role, "WriteRecordsOnce", RECORDS_ROOT, NOTIFICATIONS_ROOT, INDEX_ROOT)
    res.audit.grant_read(
        role,
        "ReadRecords",
        RECORDS_ROOT,
        NOTIFICATIONS_ROOT,
        INDEX_ROOT,
        PROVENANCE_ROOT,  # who launched the job, captured at launch (infra/constructs/provenance.py)
        actions=("s3:GetObject", "s3:GetObjectRetention"),
    )
    _allow_in_account(
        role,
        "TrainingJobFacts",
        ["sagemaker:DescribeTrainingJob", "sagemaker:ListTags"],
        "sagemaker",
        "training-job/*",
        "Every training job in this account is in scope.",
    )
    _allow_in_account(
        role,
        "PipelineStepJobs",  # confirms a job's sagemaker:pipeline-execution-arn tag (service.launcher)
        ["sagemaker:ListPipelineExecutionSteps"],
        "sagemaker",
        "pipeline/*",
        "The steps of any pipeline execution a job's tag names are read to confirm the tag.",
    )
    _allow_in_account(
        role,
        "CustomizationJobFacts",
        ["bedrock:GetModelCustomizationJob", "bedrock:ListTagsForResource"],
        "bedrock",
        "model-customization-job/*",
        "Every Bedrock model customization job in this account is in scope.",
    )
    _allow_in_account(
        role,
        "TrainingSessionFacts",  # issue 26: a session's token usage, LoRA rank and base model
        ["sagemaker:DescribeTrainingSession"],
        "sagemaker",
        "training-session/*",
        "Every training session in this account is in scope.",
    )
    _allow_any_resource(role, "SessionsAndServiceJobs", *UNSCOPED_ISSUE26_READS)
    _allow_any_resource(role, "MeteredFlops", "cloudwatch:GetMetricData", "cloudwatch:GetMetricStatistics")
    _allow_any_resource(role, "CreateTrainingJobEvent", "cloudtrail:LookupEvents")
    grant_announce(role, res.alerts)


def grant_announce(role: iam.IRole, alerts: AlertTopic) -> None:
    """What announcing a record takes: "FLOPs Classification Recorded" on the default bus (its source and
    detail-type only) and the alert topic (the classifier, the reconciler and the HyperPod function)."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="RecordedEvents",
            actions=["events:PutEvents"],
            resources=[f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:event-bus/{EVENT_BUS_NAME}"],
            conditions={
                "StringEquals": {
                    "events:source": RECORDED_EVENT_SOURCE,
                    "events:detail-type": RECORDED_EVENT_DETAIL_TYPE,
                }
            },
        )
    )
    alerts.grant_publish(role)


def _allow_in_account(role: iam.IRole, sid: str, actions: list[str], service: str, resources: str, reason: str) -> None:
    """``actions`` on this account's and region's ``service`` resources matching ``resources`` (a wildcard
    pattern such as ``training-job/*``), with the cdk-nag acknowledgement of that wildcard and its ``reason``."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid=sid,
            actions=actions,
            resources=[f"arn:{Aws.PARTITION}:{service}:{Aws.REGION}:{Aws.ACCOUNT_ID}:{resources}"],
        )
    )
    acknowledge(
        role,
        f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:{service}:<AWS::Region>:<AWS::AccountId>:{resources}]",
        reason,
    )


def _allow_any_resource(role: iam.IRole, sid: str, *actions: str) -> None:
    """Actions that support no resource-level permissions (their resource can only be "*")."""
    role.add_to_principal_policy(iam.PolicyStatement(sid=sid, actions=list(actions), resources=["*"]))
