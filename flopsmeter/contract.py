"""Names shared by the meter inside the job, the classifier service and the CLI (standard library only).

Changing one of these breaks jobs already running with an older meter: add, never rename.
"""

from __future__ import annotations

# CloudWatch metrics emitted by the training meter (flopsmeter.training) and read by the classifier.
METRICS_NAMESPACE = "FlopsMeter"
METRIC_DIMENSION = "TrainingJobName"
METRIC_CUMULATIVE_FLOPS = "CumulativeFlops"  # training FLOPs so far (forward + backward), recompute excluded
METRIC_CUMULATIVE_TOKENS = "CumulativeTokens"  # every token computed, padding included
METRIC_CUMULATIVE_NON_PADDING_TOKENS = "CumulativeNonPaddingTokens"
METRIC_RECOMPUTE_FLOPS = "RecomputeFlops"  # gradient-checkpointing recompute, recorded, never added
METRIC_FLOPS_PER_TOKEN = "FlopsPerToken"
METRIC_CEILING_RATIO = "CeilingRatio"  # cumulative FLOPs / hardware ceiling so far (a sanity check, <= 1)
# 1 when the meter knows its totals do not cover the whole job (resumed without saved totals, an interruption
# across ranks, or a model it could not meter); sent only then. The classifier then trusts the hardware ceiling.
METRIC_METER_INCOMPLETE = "MeterIncomplete"

# Job environment variables (CreateTrainingJob Environment) and their tag equivalents (tags win nothing:
# environment first, then tags; see flopsmeter.domain.pretrain for the order and its reasons).
ENV_PRETRAIN_FLOPS = "PRETRAIN_FLOPS"
ENV_BASE_MODEL = "FLOPSMETER_BASE_MODEL"
ENV_SYSTEMIC_RISK_BASE = "FLOPSMETER_SYSTEMIC_RISK_BASE"  # "true" when the base model is GPAI with systemic risk
ENV_PARENT_JOB = "FLOPSMETER_PARENT_JOB"  # training job whose checkpoint this job starts from (lineage)
ENV_DECLARED_FLOPS = "FLOPSMETER_DECLARED_FLOPS"

TAG_PRETRAIN_FLOPS = "flopsmeter:pretrain-flops"
TAG_BASE_MODEL = "flopsmeter:base-model"
TAG_SYSTEMIC_RISK_BASE = "flopsmeter:systemic-risk-base"
TAG_PARENT_JOB = "flopsmeter:parent-job"
TAG_DECLARED_FLOPS = "flopsmeter:declared-flops"

# SageMaker sets this inside a training job; the meter reads it for the metric dimension.
ENV_TRAINING_JOB_NAME = "TRAINING_JOB_NAME"

# EventBridge events the service publishes.
RECORDED_EVENT_SOURCE = "flopsmeter"
RECORDED_EVENT_DETAIL_TYPE = "FLOPs Classification Recorded"

# Lambda environment variables set by the CDK stack and read by lambdas/shared/settings.py.
LAMBDA_ENV = (
    "AUDIT_BUCKET_NAME",
    "RETENTION_YEARS",
    "PRIMARY_POLICY",
    "APPROACHING_FRACTION",
    "ALERT_TOPIC_ARN",
    "EVENT_BUS_NAME",
    "CLOUDTRAIL_MAX_WAIT_SECONDS",
    "RECONCILE_LOOKBACK_HOURS",
    "CLASSIFIER_QUEUE_URL",
    "DIGEST_SIGNING_KEY_ID",
    "STAGE",
    "DEAD_LETTER_QUEUE_URL",  # classifier only: where it sends a permanently failed message itself, with why
)

# SQS message attributes on a message the classifier dead-lettered itself (a permanent failure). A message that
# reached the dead-letter queue through the redrive policy instead (transient failures, maxReceiveCount spent)
# has none of them.
DLQ_ATTR_REASON = "flopsmeter-reason"  # String, the short reason (<= 1000 characters, never the input echoed)
DLQ_ATTR_ERROR = "flopsmeter-error"  # String, the error type, e.g. MalformedEvent, JobNotFound
DLQ_ATTR_SOURCE_MESSAGE_ID = "flopsmeter-source-message-id"  # String, the message id in the classifier queue
DLQ_ATTR_RECEIVE_COUNT = "flopsmeter-receive-count"  # Number, the delivery on which it failed (1 = the first)
DLQ_ATTR_FAILED_AT = "flopsmeter-failed-at"  # String, ISO 8601 UTC
DLQ_ATTR_SOURCE_QUEUE = "flopsmeter-source-queue"  # String, the classifier queue's ARN (where to redrive to)
DLQ_ATTR_JOB = "flopsmeter-job"  # String, the training job's name, when the event could be read
