"""Create, on the emulator, what the CDK stack creates in an account (infra/), and nothing the stack lacks.

* audit bucket: Object Lock on, versioned, default COMPLIANCE retention, SSE, public access blocked;
* classifier queue + dead-letter queue with a redrive policy (``maxReceiveCount``), a queue policy that
  lets EventBridge send; the classifier gets the DLQ's URL (``DEAD_LETTER_QUEUE_URL``), as in the stack;
* the EventBridge rule on the default bus: ``aws.sagemaker`` / "SageMaker Training Job State Change" /
  terminal statuses -> the classifier queue; and the Bedrock rule (``aws.bedrock`` / "Model Customization Job
  State Change" / terminal statuses, ``contract.model_customization_job_state_change_pattern``) -> the same queue;
* the SNS alert topic, and an asymmetric KMS key (RSA_2048, SIGN_VERIFY) for signing digests;
* provenance: a logging management trail (the stack's ``create_management_trail``) and the rule on SageMaker
  launch calls (``contract.training_launch_pattern``), here to a queue the runner drains into the function;
* the CloudWatch namespace is implicit (metrics create it).

Two local-only inboxes make the service's outputs visible in the demo: an SQS queue subscribed to the alert
topic, and one behind a rule on "FLOPs Classification Recorded" events. Local timings are short so the
demo runs in seconds: the queue's visibility timeout (seconds, not minutes) and CloudTrail's maximum wait.
Provisioning is idempotent: running it twice returns the same resources.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from flopsmeter import contract
from flopsmeter.contract import RECORDED_EVENT_DETAIL_TYPE, RECORDED_EVENT_SOURCE
from flopsmeter.domain.thresholds import DEFAULT_APPROACHING_FRACTION, DEFAULT_PRIMARY_POLICY

PREFIX = "flopsmeter"
LOCAL_VISIBILITY_TIMEOUT_SECONDS = 1  # the stack: 6 x the 60 s function timeout; seconds keep the demo short
LOCAL_CLOUDTRAIL_MAX_WAIT_SECONDS = 3  # the stack waits up to 30 min for CloudTrail's ~15 min delivery delay
LOCAL_BATCH_SIZE = 5  # the stack's event source batch size
LOCAL_MAX_RECEIVE_COUNT = contract.max_receive_count(
    LOCAL_CLOUDTRAIL_MAX_WAIT_SECONDS, LOCAL_VISIBILITY_TIMEOUT_SECONDS
)
LOCAL_RETENTION_YEARS = 10


@dataclass(frozen=True)
class LocalResources:
    """Names and addresses of the provisioned resources (written to .local/emulator.json by ``local up``)."""

    endpoint: str
    account_id: str
    region: str
    audit_bucket: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    rule_name: str
    alert_topic_arn: str
    alert_inbox_url: str
    recorded_inbox_url: str
    signing_key_id: str
    signing_key_alias: str
    event_bus_name: str = "default"
    # Provenance: the rule on SageMaker launch calls (contract.training_launch_pattern) -> this queue, which the
    # local runner drains into the provenance function (in AWS the rule invokes it directly); and the trail that
    # makes EventBridge see API calls (the stack's create_management_trail).
    provenance_queue_url: str = ""
    trail_name: str = ""
    retention_years: int = LOCAL_RETENTION_YEARS
    max_receive_count: int = LOCAL_MAX_RECEIVE_COUNT
    visibility_timeout_seconds: int = LOCAL_VISIBILITY_TIMEOUT_SECONDS
    cloudtrail_max_wait_seconds: int = LOCAL_CLOUDTRAIL_MAX_WAIT_SECONDS
    extra: dict[str, str] = field(default_factory=dict)

    def lambda_env(self) -> dict[str, str]:
        """The environment the stack gives the classifier, pointed at the emulator (AWS_ENDPOINT_URL)."""
        return {
            "AUDIT_BUCKET_NAME": self.audit_bucket,
            "RETENTION_YEARS": str(self.retention_years),
            "PRIMARY_POLICY": DEFAULT_PRIMARY_POLICY,
            "APPROACHING_FRACTION": str(DEFAULT_APPROACHING_FRACTION),
            "ALERT_TOPIC_ARN": self.alert_topic_arn,
            "EVENT_BUS_NAME": self.event_bus_name,
            "CLOUDTRAIL_MAX_WAIT_SECONDS": str(self.cloudtrail_max_wait_seconds),
            "RECONCILE_LOOKBACK_HOURS": "24",
            "DEAD_LETTER_QUEUE_URL": self.dlq_url,  # permanent failures are sent here at once, with their reason
            "DIGEST_SIGNING_KEY_ID": self.signing_key_id,
            "POWERTOOLS_SERVICE_NAME": contract.SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": contract.SERVICE_METRICS_NAMESPACE,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LocalResources:
        return cls(**data)


def _clients(endpoint: str, region: str) -> dict[str, Any]:
    from flopsmeter.local.clients import client

    names = ("s3", "sqs", "events", "sns", "kms", "sts", "cloudtrail")
    return {name: client(name, endpoint, region) for name in names}


def provision(
    endpoint: str,
    *,
    region: str = "us-east-1",
    retention_years: int = LOCAL_RETENTION_YEARS,
    visibility_timeout_seconds: int = LOCAL_VISIBILITY_TIMEOUT_SECONDS,
    max_receive_count: int = LOCAL_MAX_RECEIVE_COUNT,
    cloudtrail_max_wait_seconds: int = LOCAL_CLOUDTRAIL_MAX_WAIT_SECONDS,
) -> LocalResources:
    """Create (or find) the stack's resources on the emulator at ``endpoint``."""
    c = _clients(endpoint, region)
    account = c["sts"].get_caller_identity()["Account"]
    bucket = _audit_bucket(c["s3"], f"{PREFIX}-audit-{account}-{region}", region, retention_years)
    dlq_url, dlq_arn = _queue(c["sqs"], f"{PREFIX}-classifier-dlq", {"MessageRetentionPeriod": str(14 * 86400)})
    queue_url, queue_arn = _queue(
        c["sqs"],
        f"{PREFIX}-classifier",
        {
            "VisibilityTimeout": str(visibility_timeout_seconds),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}),
        },
    )
    rule = f"{PREFIX}-training-job-state"
    _rule_to_queue(c["events"], c["sqs"], rule, contract.training_job_state_change_pattern(), queue_url, queue_arn)
    bedrock_pattern = contract.model_customization_job_state_change_pattern()
    _rule_to_queue(
        c["events"], c["sqs"], f"{PREFIX}-bedrock-customization-state", bedrock_pattern, queue_url, queue_arn
    )
    for name, pattern in (
        ("training-session-ended", contract.training_session_end_pattern()),  # issue 26
        ("batch-service-job-state", contract.batch_service_job_state_change_pattern()),
    ):
        _rule_to_queue(c["events"], c["sqs"], f"{PREFIX}-{name}", pattern, queue_url, queue_arn)  # fmt: skip
    topic_arn = c["sns"].create_topic(Name=f"{PREFIX}-alerts")["TopicArn"]
    alert_inbox_url, alert_inbox_arn = _queue(c["sqs"], f"{PREFIX}-local-alert-inbox", {})
    c["sns"].subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=alert_inbox_arn, Attributes={"RawMessageDelivery": "false"}
    )
    recorded_url, recorded_arn = _queue(c["sqs"], f"{PREFIX}-local-recorded-inbox", {})
    recorded_pattern = {"source": [RECORDED_EVENT_SOURCE], "detail-type": [RECORDED_EVENT_DETAIL_TYPE]}
    _rule_to_queue(c["events"], c["sqs"], f"{PREFIX}-local-recorded", recorded_pattern, recorded_url, recorded_arn)
    key_id, alias = _signing_key(c["kms"], f"alias/{PREFIX}-digest-signing")
    provenance_url, provenance_arn = _queue(c["sqs"], f"{PREFIX}-local-provenance", {})
    launch_rule = f"{PREFIX}-provenance-launch-calls"
    for suffix, pattern in zip(("", "-batch"), contract.work_launch_patterns(), strict=True):
        _rule_to_queue(c["events"], c["sqs"], launch_rule + suffix, pattern, provenance_url, provenance_arn)
    trail = _management_trail(c["s3"], c["cloudtrail"], f"{PREFIX}-trail-{account}-{region}", region)
    return LocalResources(
        provenance_queue_url=provenance_url,
        trail_name=trail,
        endpoint=endpoint,
        account_id=account,
        region=region,
        audit_bucket=bucket,
        queue_url=queue_url,
        queue_arn=queue_arn,
        dlq_url=dlq_url,
        dlq_arn=dlq_arn,
        rule_name=rule,
        alert_topic_arn=topic_arn,
        alert_inbox_url=alert_inbox_url,
        recorded_inbox_url=recorded_url,
        signing_key_id=key_id,
        signing_key_alias=alias,
        retention_years=retention_years,
        max_receive_count=max_receive_count,
        visibility_timeout_seconds=visibility_timeout_seconds,
        cloudtrail_max_wait_seconds=cloudtrail_max_wait_seconds,
    )


def _audit_bucket(s3: Any, name: str, region: str, retention_years: int) -> str:
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if name not in existing:
        kwargs: dict[str, Any] = {"Bucket": name, "ObjectLockEnabledForBucket": True}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(**kwargs)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object_lock_configuration(
        Bucket=name,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": retention_years}},
        },
    )
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}, "BucketKeyEnabled": True}],
        },
    )
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    return name


def _queue(sqs: Any, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    if attributes:
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return str(url), str(arn)


def _rule_to_queue(events: Any, sqs: Any, rule: str, pattern: dict[str, Any], queue_url: str, queue_arn: str) -> None:
    rule_arn = events.put_rule(Name=rule, EventPattern=json.dumps(pattern), State="ENABLED")["RuleArn"]
    events.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": queue_arn}])
    statement = {
        "Sid": f"{rule}-send",
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
    }
    current = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["Policy"]).get("Attributes", {})
    policy = json.loads(current.get("Policy") or '{"Version": "2012-10-17", "Statement": []}')
    others = [s for s in policy.get("Statement", []) if s.get("Sid") != statement["Sid"]]  # one per rule
    policy["Statement"] = [*others, statement]
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})


def _management_trail(s3: Any, cloudtrail: Any, bucket: str, region: str) -> str:
    """A logging trail (the stack's ``create_management_trail``): EventBridge sees API calls only while one logs."""
    name = f"{PREFIX}-management"
    if name not in {t["Name"] for t in cloudtrail.describe_trails().get("trailList", [])}:
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
            s3.create_bucket(**kwargs)
        cloudtrail.create_trail(Name=name, S3BucketName=bucket, IsMultiRegionTrail=False)
    cloudtrail.start_logging(Name=name)
    return name


def _signing_key(kms: Any, alias: str) -> tuple[str, str]:
    for entry in kms.list_aliases().get("Aliases", []):
        if entry.get("AliasName") == alias and entry.get("TargetKeyId"):
            return str(entry["TargetKeyId"]), alias
    key = kms.create_key(
        KeyUsage="SIGN_VERIFY", KeySpec=contract.SIGNING_KEY_SPEC, Description="FLOPs Meter audit digest signing key"
    )["KeyMetadata"]
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    return str(key["KeyId"]), alias
