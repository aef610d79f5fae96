"""FlopsMeterStack: composes the constructs, does every grant where both sides are visible, sets outputs.

IAM, per role (nothing else is granted; nothing anywhere may delete audit objects):
- classifier: s3:PutObject + s3:PutObjectRetention on records/* and notifications/* (the "announced" markers);
  s3:GetObject + s3:GetObjectRetention there (lineage, duplicate check); s3:ListBucket limited to those
  prefixes (so a missing record is a 404, not a 403); the audit key to encrypt/decrypt;
  sagemaker:DescribeTrainingJob + sagemaker:ListTags on training jobs; cloudwatch:GetMetricData/
  GetMetricStatistics and cloudtrail:LookupEvents (no resource-level permissions exist for these, so their
  resource is "*"); events:PutEvents on the default bus for source "flopsmeter" only; sns:Publish on the
  alert topic; consuming its queue; sqs:SendMessage on the dead-letter queue only (+ kms:GenerateDataKey /
  kms:Decrypt on its key), where it puts a permanently failed message at once with the reason attached.
- reconciler: runs the same classification code for jobs that have no record, so the classifier's grants
  except the queue, plus sagemaker:ListTrainingJobs ("*": no resource-level permissions).
- digest: list + read records/ and digests/ (object versions included); s3:PutObject +
  s3:PutObjectRetention on digests/*; kms:Sign (RSASSA_PSS_SHA_256 only) + kms:GetPublicKey on the signing key.
"""

from __future__ import annotations

from aws_cdk import Aws, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from flopsmeter.audit.keys import NOTIFICATIONS_PREFIX
from flopsmeter.contract import RECORDED_EVENT_DETAIL_TYPE, RECORDED_EVENT_SOURCE
from infra.config import DeployConfig
from infra.constructs.audit_bucket import DIGESTS_ROOT, RECORDS_ROOT, AuditBucket
from infra.constructs.functions import ServiceFunction, powertools_layer
from infra.constructs.monitoring import SERVICE_METRICS_NAMESPACE, SERVICE_NAME, AlertTopic, Monitoring
from infra.constructs.nag import acknowledge
from infra.constructs.pipeline import CLASSIFIER_TIMEOUT, ClassifierQueue
from infra.constructs.query import RecordsQuery

DIGEST_SIGNING_ALGORITHM = "RSASSA_PSS_SHA_256"
# CloudWatch Logs retention in days -> CDK's enum member (jsii enums carry names, not the day counts).
LOG_RETENTION = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1096: "THREE_YEARS",
    1827: "FIVE_YEARS",
    2192: "SIX_YEARS",
    2557: "SEVEN_YEARS",
    2922: "EIGHT_YEARS",
    3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}
EVENT_BUS_NAME = "default"
NOTIFICATIONS_ROOT = NOTIFICATIONS_PREFIX.split("/", 1)[0] + "/"  # classifier's "event/alert sent" markers


class FlopsMeterStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: DeployConfig, asset_dir: str, **kwargs: object
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        cfg = config
        ephemeral = RemovalPolicy.RETAIN if cfg.is_production else RemovalPolicy.DESTROY

        audit = AuditBucket(
            self, "Audit", retention_years=cfg.retention_years, access_log_retention_days=cfg.access_log_retention_days
        )
        messaging_key = kms.Key(
            self,
            "MessagingKey",
            enable_key_rotation=True,
            removal_policy=ephemeral,
            description="FLOPs Meter queues and alert topic",
        )
        signing_key = kms.Key(
            self,
            "DigestSigningKey",
            description="FLOPs Meter hourly digest signatures (RSASSA-PSS SHA-256); verifiers need its public key",
            key_spec=kms.KeySpec.RSA_2048,
            key_usage=kms.KeyUsage.SIGN_VERIFY,
            removal_policy=RemovalPolicy.RETAIN,  # signatures must stay verifiable as long as the digests exist
        )
        alerts = AlertTopic(self, "Alerts", key=messaging_key, email=cfg.alert_email)
        intake = ClassifierQueue(
            self,
            "Intake",
            key=messaging_key,
            cloudtrail_max_wait_seconds=cfg.cloudtrail_max_wait_seconds,
            removal_policy=ephemeral,
        )

        common_env = {
            "AUDIT_BUCKET_NAME": audit.bucket.bucket_name,
            "RETENTION_YEARS": str(cfg.retention_years),
            "PRIMARY_POLICY": cfg.primary_policy,
            "APPROACHING_FRACTION": repr(cfg.approaching_fraction),
            "ALERT_TOPIC_ARN": alerts.topic.topic_arn,
            "EVENT_BUS_NAME": EVENT_BUS_NAME,
            "CLOUDTRAIL_MAX_WAIT_SECONDS": str(cfg.cloudtrail_max_wait_seconds),
            "RECONCILE_LOOKBACK_HOURS": str(cfg.reconcile_lookback_hours),
            "STAGE": cfg.stage,
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": SERVICE_METRICS_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": cfg.log_level,
        }
        code = lambda_.Code.from_asset(asset_dir)
        layer = powertools_layer(self, cfg.powertools_layer_version)
        log_retention = logs.RetentionDays[LOG_RETENTION[cfg.log_retention_days]]

        def function(
            construct_id: str,
            folder: str,
            description: str,
            *,
            timeout: Duration,
            memory_mb: int,
            reserved: int,
            extra_env: dict[str, str] | None = None,
        ) -> ServiceFunction:
            return ServiceFunction(
                self,
                construct_id,
                handler=f"lambdas.{folder}.handler.lambda_handler",
                description=description,
                code=code,
                layer=layer,
                environment={**common_env, **(extra_env or {})},
                timeout=timeout,
                memory_mb=memory_mb,
                reserved_concurrency=reserved,
                log_retention=log_retention,
                removal_policy=ephemeral,
            )

        classifier = function(
            "Classifier",
            "classifier",
            "Classifies ended SageMaker training jobs; writes records",
            timeout=CLASSIFIER_TIMEOUT,
            memory_mb=512,
            reserved=cfg.classifier_reserved_concurrency,
            extra_env={"DEAD_LETTER_QUEUE_URL": intake.dead_letter_queue.queue_url},
        )
        reconciler = function(
            "Reconciler",
            "reconciler",
            "Classifies ended training jobs that have no record (a lost event never means a lost record)",
            timeout=Duration.minutes(10),
            memory_mb=512,
            reserved=1,
        )
        digest = function(
            "Digest",
            "digest",
            "Writes the hourly signed, hash-chained digest of new records",
            timeout=Duration.minutes(5),
            memory_mb=512,
            reserved=1,
            extra_env={"DIGEST_SIGNING_KEY_ID": signing_key.key_id},
        )

        intake.feed(classifier, max_concurrency=cfg.classifier_reserved_concurrency)
        reconciler.run_on_schedule(
            events.Schedule.rate(Duration.minutes(cfg.reconcile_every_minutes)),
            "FLOPs Meter reconciler: classify ended training jobs that have no record",
        )
        digest.run_on_schedule(
            events.Schedule.cron(minute="5"), "FLOPs Meter digest: hourly, five minutes past the hour"
        )

        self._grant_classifier(classifier.role, audit, alerts, intake)
        self._grant_reconciler(reconciler.role, audit, alerts)
        self._grant_digest(digest.role, audit, signing_key)
        audit.restrict_retention_to(
            [
                (classifier.role, (RECORDS_ROOT, NOTIFICATIONS_ROOT)),
                (reconciler.role, (RECORDS_ROOT, NOTIFICATIONS_ROOT)),
                (digest.role, (DIGESTS_ROOT,)),
            ]
        )

        query = RecordsQuery(
            self,
            "Query",
            stage=cfg.stage,
            records_bucket=audit.bucket,
            key=audit.key,
            log_bucket=audit.log_bucket,
            bytes_scanned_cutoff_gb=cfg.athena_bytes_scanned_cutoff_gb,
            removal_policy=ephemeral,
        )
        reader = self._audit_reader_policy(audit, signing_key, query)
        monitoring = Monitoring(
            self,
            "Monitoring",
            topic=alerts.topic,
            dead_letter_queue=intake.dead_letter_queue,
            queue=intake.queue,
            functions=[classifier, reconciler, digest],
            dashboard_name=f"FlopsMeter-{cfg.stage}",
        )

        outputs = {
            "AuditBucketName": audit.bucket.bucket_name,
            "AthenaWorkGroup": query.workgroup_name,
            "GlueDatabase": query.database_name,
            "GlueTable": query.table_name,
            "AlertTopicArn": alerts.topic.topic_arn,
            "ClassifierQueueUrl": intake.queue.queue_url,
            "DeadLetterQueueUrl": intake.dead_letter_queue.queue_url,
            "DigestSigningKeyArn": signing_key.key_arn,
            "AuditReadPolicyArn": reader.managed_policy_arn,
            "DashboardName": monitoring.dashboard.dashboard_name,
            "ClassifierFunctionName": classifier.function.function_name,
        }
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)

    # ---- grants -------------------------------------------------------------------------------------------

    def _grant_classify(self, role: iam.IRole, audit: AuditBucket, alerts: AlertTopic) -> None:
        """What classifying a job takes (the classifier, and the reconciler which runs the same service code)."""
        written = [audit.objects(RECORDS_ROOT), audit.objects(NOTIFICATIONS_ROOT)]
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteRecordsOnce", actions=["s3:PutObject", "s3:PutObjectRetention"], resources=written
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(sid="ReadRecords", actions=["s3:GetObject", "s3:GetObjectRetention"], resources=written)
        )
        self._list_prefixes(role, audit, RECORDS_ROOT, NOTIFICATIONS_ROOT)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="AuditKey", actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[audit.key.key_arn]
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="TrainingJobFacts",
                actions=["sagemaker:DescribeTrainingJob", "sagemaker:ListTags"],
                resources=[self._training_jobs_arn()],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="MeteredFlops",
                actions=["cloudwatch:GetMetricData", "cloudwatch:GetMetricStatistics"],
                resources=["*"],  # CloudWatch metric reads support no resource-level permissions
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="CreateTrainingJobEvent",
                actions=["cloudtrail:LookupEvents"],
                resources=["*"],  # LookupEvents supports no resource-level permissions
            )
        )
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
        alerts.topic.grant_publish(role)
        bucket = self._logical(audit.bucket)
        for prefix in (RECORDS_ROOT, NOTIFICATIONS_ROOT):
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/{prefix}*]",
                "One object per job under this prefix; the prefix is the narrowest scope.",
            )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:training-job/*]",
            "Every training job in this account is in scope.",
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
            "CDK's SNS publish grant for the topic's CMK; limited to that one key.",
        )

    def _grant_classifier(
        self, role: iam.IRole, audit: AuditBucket, alerts: AlertTopic, intake: ClassifierQueue
    ) -> None:
        self._grant_classify(role, audit, alerts)  # + consuming its queue (granted by the event source)
        # Permanent failures are sent to the DLQ by the handler itself, with the reason as message attributes.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DeadLetterPermanentFailures",
                actions=["sqs:SendMessage"],
                resources=[intake.dead_letter_queue.queue_arn],
            )
        )
        dead_letter_key = intake.dead_letter_queue.encryption_master_key
        if dead_letter_key is not None:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="DeadLetterKey",
                    actions=["kms:GenerateDataKey", "kms:Decrypt"],
                    resources=[dead_letter_key.key_arn],
                )
            )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "CloudWatch metric reads, CloudTrail LookupEvents and X-Ray trace writes have no resource-level scope.",
        )

    def _grant_reconciler(self, role: iam.IRole, audit: AuditBucket, alerts: AlertTopic) -> None:
        self._grant_classify(role, audit, alerts)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ListEndedJobs",
                actions=["sagemaker:ListTrainingJobs"],
                resources=["*"],  # ListTrainingJobs supports no resource-level permissions
            )
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "ListTrainingJobs, CloudWatch metric reads, CloudTrail LookupEvents and X-Ray trace writes have no "
            "resource-level scope.",
        )

    def _grant_digest(self, role: iam.IRole, audit: AuditBucket, signing_key: kms.IKey) -> None:
        readable = [audit.objects(RECORDS_ROOT), audit.objects(DIGESTS_ROOT)]
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadRecordsAndDigests", actions=["s3:GetObject", "s3:GetObjectVersion"], resources=readable
            )
        )
        self._list_prefixes(role, audit, RECORDS_ROOT, DIGESTS_ROOT, versions=True)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteDigestsOnce",
                actions=["s3:PutObject", "s3:PutObjectRetention"],
                resources=[audit.objects(DIGESTS_ROOT)],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="AuditKey", actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[audit.key.key_arn]
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="SignDigests",
                actions=["kms:Sign"],
                resources=[signing_key.key_arn],
                conditions={"StringEquals": {"kms:SigningAlgorithm": DIGEST_SIGNING_ALGORITHM}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(sid="PublicKey", actions=["kms:GetPublicKey"], resources=[signing_key.key_arn])
        )
        acknowledge(role, "AwsSolutions-IAM5[Resource::*]", "X-Ray trace writes support no resource-level permissions.")
        bucket = self._logical(audit.bucket)
        for prefix in (RECORDS_ROOT, DIGESTS_ROOT):
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/{prefix}*]",
                "The digest lists and reads every record and digest; writes only under digests/.",
            )

    def _list_prefixes(self, role: iam.IRole, audit: AuditBucket, *prefixes: str, versions: bool = False) -> None:
        actions = ["s3:ListBucket", "s3:ListBucketVersions"] if versions else ["s3:ListBucket"]
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ListOwnPrefixes",
                actions=actions,
                resources=[audit.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}},
            )
        )

    def _training_jobs_arn(self) -> str:
        return f"arn:{Aws.PARTITION}:sagemaker:{Aws.REGION}:{Aws.ACCOUNT_ID}:training-job/*"

    def _logical(self, construct: Construct) -> str:
        return self.get_logical_id(construct.node.default_child)  # type: ignore[arg-type]

    # ---- read access for people ---------------------------------------------------------------------------

    def _audit_reader_policy(self, audit: AuditBucket, signing_key: kms.IKey, query: RecordsQuery) -> iam.ManagedPolicy:
        """Attach to compliance officers' roles: read and verify records, query them with Athena. No writes to the
        audit bucket, no deletes anywhere."""
        workgroup_arn = f"arn:{Aws.PARTITION}:athena:{Aws.REGION}:{Aws.ACCOUNT_ID}:workgroup/{query.workgroup_name}"
        glue_prefix = f"arn:{Aws.PARTITION}:glue:{Aws.REGION}:{Aws.ACCOUNT_ID}"
        policy = iam.ManagedPolicy(
            self,
            "AuditReadPolicy",
            description="FLOPs Meter: read, verify and query the audit records",
            statements=[
                iam.PolicyStatement(
                    sid="ReadAudit",
                    actions=["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectRetention"],
                    resources=[audit.objects()],
                ),
                iam.PolicyStatement(
                    sid="ListAudit",
                    actions=["s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation"],
                    resources=[audit.bucket.bucket_arn],
                ),
                iam.PolicyStatement(
                    sid="OpenAudit", actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[audit.key.key_arn]
                ),
                iam.PolicyStatement(
                    sid="VerifyDigests", actions=["kms:GetPublicKey", "kms:Verify"], resources=[signing_key.key_arn]
                ),
                iam.PolicyStatement(
                    sid="Query",
                    actions=[
                        "athena:StartQueryExecution",
                        "athena:GetQueryExecution",
                        "athena:GetQueryResults",
                        "athena:StopQueryExecution",
                        "athena:GetWorkGroup",
                    ],
                    resources=[workgroup_arn],
                ),
                iam.PolicyStatement(
                    sid="Catalog",
                    actions=["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"],
                    resources=[
                        f"{glue_prefix}:catalog",
                        f"{glue_prefix}:database/{query.database_name}",
                        f"{glue_prefix}:table/{query.database_name}/{query.table_name}",
                    ],
                ),
                iam.PolicyStatement(
                    sid="QueryResults",
                    actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
                    resources=[query.results_bucket.arn_for_objects("*")],
                ),
                iam.PolicyStatement(
                    sid="ListQueryResults",
                    actions=["s3:ListBucket", "s3:GetBucketLocation"],
                    resources=[query.results_bucket.bucket_arn],
                ),
            ],
        )
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::<{self._logical(audit.bucket)}.Arn>/*]",
            "Readers may read every record and digest; the bucket policy forbids writes and deletes.",
        )
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::<{self._logical(query.results_bucket)}.Arn>/*]",
            "Athena writes each query's results under a generated key in the results bucket.",
        )
        return policy
