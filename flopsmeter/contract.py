"""Names shared by the meter inside the job, the classifier service and the CLI (standard library only).

Changing one of these breaks jobs already running with an older meter: add, never rename.
"""

from __future__ import annotations

import math
from enum import StrEnum

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

# The meter's stdout metrics (SageMaker MetricDefinitions on its stdout line, flopsmeter.training.emitters): SageMaker
# keeps the last value of each in the job's FinalMetricDataList, the classifier's second channel when the CloudWatch
# series is missing (no credentials or no region in the job, AccessDenied on PutMetricData).
STDOUT_METRIC_CUMULATIVE_FLOPS = "flopsmeter:cumulative_flops"
STDOUT_METRIC_TOKENS = "flopsmeter:tokens"
STDOUT_METRIC_NON_PADDING_TOKENS = "flopsmeter:non_padding_tokens"
STDOUT_METRIC_METER_INCOMPLETE = "flopsmeter:meter_incomplete"

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

# SageMaker training job statuses (DescribeTrainingJob / the state-change event) and the terminal ones the
# service classifies. The EventBridge event the stack and the emulator subscribe to.
JOB_STATUSES = ("InProgress", "Completed", "Failed", "Stopping", "Stopped")
TERMINAL_STATUSES = ("Completed", "Failed", "Stopped")
SAGEMAKER_EVENT_SOURCE = "aws.sagemaker"
TRAINING_JOB_STATE_CHANGE = "SageMaker Training Job State Change"


def training_job_state_change_pattern() -> dict[str, object]:
    """The EventBridge pattern of the classifier's rule (the stack's and the emulator's)."""
    return {
        "source": [SAGEMAKER_EVENT_SOURCE],
        "detail-type": [TRAINING_JOB_STATE_CHANGE],
        "detail": {"TrainingJobStatus": list(TERMINAL_STATUSES)},
    }


# Receives before the classifier queue dead-letters a message: enough to cover the CloudTrail wait, one final
# try that records not_found, and SPARE_RECEIVES for transient failures.
SPARE_RECEIVES = 4


def max_receive_count(cloudtrail_max_wait_seconds: int, visibility_seconds: int) -> int:
    return math.ceil(cloudtrail_max_wait_seconds / visibility_seconds) + 1 + SPARE_RECEIVES


# The service's own metrics (Powertools EMF): namespace, the "service" dimension, and the metric names.
SERVICE_NAME = "flopsmeter"
SERVICE_METRICS_NAMESPACE = "FlopsMeterService"  # not METRICS_NAMESPACE: that one holds the meter's metrics


class ServiceMetric(StrEnum):
    JOBS_CLASSIFIED = "JobsClassified"  # one per record written
    THRESHOLD_EXCEEDED = "ThresholdExceeded"  # worst outcome across policies "exceeds"
    THRESHOLD_APPROACHING = "ThresholdApproaching"  # worst outcome across policies "approaching"
    THRESHOLD_RATIO = "ThresholdRatio"  # per job: FLOPs / threshold of the strictest policy (dashboard: Maximum)
    DUPLICATE_DELIVERY = "DuplicateDelivery"
    AUDIT_WRITE_FAILED = "AuditWriteFailed"
    CLOUDTRAIL_NOT_FOUND = "CloudTrailNotFound"
    MALFORMED_EVENT = "MalformedEvent"
    PERMANENT_FAILURE = "PermanentFailure"
    NON_TERMINAL_IGNORED = "NonTerminalIgnored"
    DEAD_LETTERED = "DeadLettered"
    DEAD_LETTER_SEND_FAILED = "DeadLetterSendFailed"
    JOBS_RECONCILED = "JobsReconciled"
    RECONCILE_DEFERRED = "ReconcileDeferred"
    RECONCILE_FAILED = "ReconcileFailed"
    DIGESTS_WRITTEN = "DigestsWritten"
    PROVENANCE_CAPTURED = "ProvenanceCaptured"  # one per launch call stored (provenance function)
    ASSUME_ROLE_FAILED = "AssumeRoleFailed"  # organization mode: a member account's reader role could not be assumed
    REGION_NOT_SERVED = "RegionNotServed"  # a job event from a region the deployment does not read (dead-lettered)
    PARTITIONS_COMPACTED = "PartitionsCompacted"  # compaction function: partitions given a new Parquet generation
    COMPACTION_DEFERRED = "CompactionDeferred"  # compaction function: days/partitions left for the next run
    SESSIONS_ASSESSED = "SessionsAssessed"  # issue 26: running training sessions re-assessed by the scheduled pass
    SESSION_CROSSED_WHILE_RUNNING = "SessionCrossedWhileRunning"  # issue 26: a crossing marker written (alerted)
    HYPERPOD_REPORT_REFUSED = "HyperPodReportRefused"  # a HyperPod report whose sender could not be confirmed
    CLUSTER_UNREPORTED_FLOPS = "ClusterUnreportedFlops"  # per cluster period: ceiling minus reported jobs (the gap)


# Audit digests are signed by an asymmetric KMS key (RSA_2048, SIGN_VERIFY) with this algorithm.
SIGNING_KEY_SPEC = "RSA_2048"
SIGNING_ALGORITHM = "RSASSA_PSS_SHA_256"

# EventBridge events the service publishes.
RECORDED_EVENT_SOURCE = "flopsmeter"
RECORDED_EVENT_DETAIL_TYPE = "FLOPs Classification Recorded"

# Lambda environment variables set by the CDK stack and validated by flopsmeter.functions.settings.
LAMBDA_ENV = (
    "AUDIT_BUCKET_NAME",
    "RETENTION_YEARS",
    "PRIMARY_POLICY",
    "APPROACHING_FRACTION",
    "ALERT_TOPIC_ARN",
    "EVENT_BUS_NAME",
    "CLOUDTRAIL_MAX_WAIT_SECONDS",
    "RECONCILE_LOOKBACK_HOURS",
    "DIGEST_SIGNING_KEY_ID",
    "DEAD_LETTER_QUEUE_URL",  # classifier only: where it sends a permanently failed message itself, with why
    # organization mode (docs/organization.md)
    "DEPLOYMENT_MODE",  # single-account | organization
    "MEMBER_ROLE_NAME",  # organization: the member accounts' reader role (member_reader_role_name(stage))
    "MAX_RECEIVE_COUNT",  # classifier: the queue's maxReceiveCount (the last delivery dead-letters with its reason)
    "MEMBER_ACCOUNTS",  # reconciler, optional: comma-separated account ids (else Organizations ListAccounts)
    "MEMBER_REGIONS",  # classifier, reconciler: comma-separated regions the member stack is deployed to
    "RECONCILE_CURSOR_PARAMETER",  # reconciler: SSM parameter holding where the round-robin resumes
    # the provider's establishment (Art. 54) and the energy estimate's assumptions (docs/obligations.md)
    "ESTABLISHED_OUTSIDE_EU",
    "ENERGY_PUE",
    "ENERGY_POWER_UTILISATION",
    # the compaction function (flopsmeter.functions.compaction; docs/audit.md)
    "ATHENA_WORKGROUP",
    "GLUE_DATABASE",
    "RECORDS_TABLE",
    "COMPACTED_TABLE",
    "STAGING_BUCKET_NAME",
    "COMPACTION_SETTLE_DAYS",
    "COMPACTION_LOOKBACK_DAYS",
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

# Why a declared PRETRAIN_FLOPS more than 30 % above the catalog's lowest estimate for the same base is right
# (free text, recorded in the audit record's basis). Without it the catalog figure is used
# (flopsmeter.domain.pretrain; guideline Annex A.2 error margin).
ENV_PRETRAIN_FLOPS_OVERRIDE_REASON = "FLOPSMETER_PRETRAIN_FLOPS_OVERRIDE_REASON"
TAG_PRETRAIN_FLOPS_OVERRIDE_REASON = "flopsmeter:pretrain-flops-override-reason"

# Organization mode (infra/member.py): the read-only role each member account holds for the compliance account's
# classifier and reconciler to assume, one per stage (a StackSet deploys it to every member account).
MEMBER_READER_ROLE_PREFIX = "FlopsMeterMemberReader"
SINGLE_ACCOUNT = "single-account"
ORGANIZATION = "organization"
DEPLOYMENT_MODES = (SINGLE_ACCOUNT, ORGANIZATION)


def member_reader_role_name(stage: str) -> str:
    return f"{MEMBER_READER_ROLE_PREFIX}-{stage}"


# Object Lock retention the writers ask for, per configured year (AuditStore.retain_until: leap days never shorten
# a retention). The bucket policy denies anything longer than this plus a margin (infra/constructs/audit_bucket.py).
RETENTION_DAYS_PER_YEAR = 366


# The meter's crossing alert (issue 16; flopsmeter.training.crossing): the moment prior + metered FLOPs go over the
# lowest threshold of any policy, the meter sends this metric once (value 1, timestamp = the crossing moment) and
# writes a ``flopsmeter: threshold_crossed=1 ... notification_due_at=...`` line (Art. 52(1): due two weeks later).
METRIC_THRESHOLD_CROSSED = "ThresholdCrossed"
LINE_THRESHOLD_CROSSED = "threshold_crossed"

# The meter's breakdown of CumulativeFlops (sent only when more than update passes were counted, so a plain
# run costs no extra metric):
# update + reference + generation + reward inference = CumulativeFlops; RecomputeFlops (above) stays apart.
METRIC_UPDATE_FLOPS = "UpdateFlops"  # forward + backward of the passes that update the weights
METRIC_REFERENCE_FLOPS = "ReferenceFlops"  # forward-only scoring: reference model, teacher, no-grad policy passes
METRIC_GENERATION_FLOPS = "GenerationFlops"  # rollouts (RL trainers)
METRIC_REWARD_INFERENCE_FLOPS = "RewardInferenceFlops"  # reward models scoring rollouts (ambiguous; included)

# Measured mode (issue 22): what FlopCounterMode measured over the meter's measured windows, and the closed form's
# figure for the same work (counted + recompute). Sent only when a window's ratio fell outside the tolerance, so a
# run whose closed form agrees costs no extra metric; the larger figure is already in CumulativeFlops.
METRIC_MEASURED_FLOPS = "MeasuredFlops"
METRIC_MEASURED_CLOSED_FORM_FLOPS = "MeasuredClosedFormFlops"
# How the meter counts attention (recorded with metered figures): the scores at full seq_len x seq_len, and a fused
# kernel's (SDPA, FlashAttention) QK^T recompute in RecomputeFlops, never in CumulativeFlops.
ATTENTION_CONVENTION = "full-square scores; fused-kernel backward QK^T recompute in recompute_flops"


# Lineage (issue 18): the cumulative FLOPs of everything a job starts from, declared by the user when the
# service cannot read a parent's record (unknown job, another account or region, unreadable record). Used only
# then, and never below what could be read (flopsmeter.domain.lineage). FLOPSMETER_PARENT_JOB=none declares
# that the job starts from no earlier job (inferred parents are then recorded as overridden).
ENV_PARENT_FLOPS = "FLOPSMETER_PARENT_FLOPS"
TAG_PARENT_FLOPS = "flopsmeter:parent-flops"


# ---- Amazon Bedrock model customization jobs (issue 16 item 4) ---------------------------------------------------
# EventBridge: Amazon Bedrock User Guide, "How EventBridge for Amazon Bedrock works" (source aws.bedrock,
# detail-type "Model Customization Job State Change", detail.jobStatus). Statuses are GetModelCustomizationJob's
# (InProgress | Completed | Failed | Stopping | Stopped), the same words as a training job's.
BEDROCK_EVENT_SOURCE = "aws.bedrock"
MODEL_CUSTOMIZATION_JOB_STATE_CHANGE = "Model Customization Job State Change"
BEDROCK_TERMINAL_STATUSES = TERMINAL_STATUSES
# CloudTrail: the call that creates the job (its provenance), and the service that logs it.
BEDROCK_CLOUDTRAIL_SOURCE = "bedrock.amazonaws.com"
CREATE_MODEL_CUSTOMIZATION_JOB = "CreateModelCustomizationJob"


def model_customization_job_state_change_pattern() -> dict[str, object]:
    """The EventBridge pattern of the Bedrock rule into the classifier queue (the stack's and the emulator's)."""
    return {
        "source": [BEDROCK_EVENT_SOURCE],
        "detail-type": [MODEL_CUSTOMIZATION_JOB_STATE_CHANGE],
        "detail": {"jobStatus": list(BEDROCK_TERMINAL_STATUSES)},
    }


# Capture at launch (provenance): the CloudTrail management events of the API calls that create training work, as
# EventBridge delivers them ("AWS API Call via CloudTrail"; needs an active trail in the account). The stack's rule
# (infra/constructs/provenance.py) and the emulator's share this pattern. Successful calls only: a refused call
# created nothing.
CLOUDTRAIL_API_CALL = "AWS API Call via CloudTrail"
SAGEMAKER_API_EVENT_SOURCE = "sagemaker.amazonaws.com"
# Each launch call, and where it names what it created (CloudTrail's ``responseElements``).
CREATED_ARN_FIELD = {
    "CreateTrainingJob": "trainingJobArn",
    "CreateHyperParameterTuningJob": "hyperParameterTuningJobArn",
    "StartPipelineExecution": "pipelineExecutionArn",
    "CreateAutoMLJob": "autoMLJobArn",
    "CreateAutoMLJobV2": "autoMLJobArn",
    "CreateTrainingSession": "trainingSessionArn",  # issue 26: who opened a training session
}
LAUNCH_EVENT_NAMES = tuple(CREATED_ARN_FIELD)
# Tags SageMaker Pipelines puts on the jobs a pipeline step starts (the step's execution, the step's name).
TAG_PIPELINE_EXECUTION_ARN = "sagemaker:pipeline-execution-arn"
TAG_PIPELINE_STEP_NAME = "sagemaker:pipeline-step-name"


def training_launch_pattern() -> dict[str, object]:
    """The EventBridge pattern of the provenance rule: a successful SageMaker call that creates training work."""
    return cloudtrail_calls_pattern(SAGEMAKER_EVENT_SOURCE, SAGEMAKER_API_EVENT_SOURCE, LAUNCH_EVENT_NAMES)


def cloudtrail_calls_pattern(source: str, event_source: str, names: tuple[str, ...]) -> dict[str, object]:
    """Successful calls ``names`` of one service, as EventBridge delivers them from CloudTrail."""
    return {
        "source": [source],
        "detail-type": [CLOUDTRAIL_API_CALL],
        "detail": {"eventSource": [event_source], "eventName": list(names), "errorCode": [{"exists": False}]},
    }


# Managed customization (issue 23 point 6): the token count of a SageMaker serverless customization or Amazon Bedrock
# job, declared where AWS reports none (Bedrock never does; a serverless job's BillableTokenCount may be absent or 0),
# so the record's bound can be corrected. Read like BillableTokenCount: every token of the training data, once per
# epoch (for RL, prompts and generated tokens); the estimate's conservative readings (a DPO pair's prompt run twice,
# every RL token generated and trained on) still apply. A whole number > 0; beside a reported count the larger is
# used (flopsmeter.domain.customization). Environment first, then the tag, as for the other settings.
ENV_DECLARED_TOKENS = "FLOPSMETER_DECLARED_TOKENS"
TAG_DECLARED_TOKENS = "flopsmeter:declared-tokens"


# ---- SageMaker training sessions (issue 26 item 1) ---------------------------------------------------------------
# No state-change event: the control-plane calls are CloudTrail management events. CreateTrainingSession is captured
# as provenance (who opened it); StopTrainingSession / DeleteTrainingSession go to the classifier queue; a session
# that fails or expires is found by the scheduled pass (flopsmeter.service.session_watch), which also re-assesses
# running sessions. Statuses are DescribeTrainingSession's (botocore 1.44 TrainingSessionStatus).
SESSION_STATUSES = (
    "Created", "Blocked", "Running", "Failed", "Scheduled", "Stopping", "Stopped", "Expired", "Deleting",
    "DeletionFailed",
)  # fmt: skip
SESSION_ENDED_STATUSES = ("Stopped", "Failed", "Expired", "Deleting", "DeletionFailed")  # no more compute
SESSION_ACTIVE_STATUSES = ("Running", "Blocked")  # holding the model on accelerators: re-assessed while running
SESSION_END_CALLS = ("StopTrainingSession", "DeleteTrainingSession")
CREATE_TRAINING_SESSION = "CreateTrainingSession"


def training_session_end_pattern() -> dict[str, object]:
    """The pattern of the rule that sends a successful Stop/DeleteTrainingSession call to the classifier queue."""
    return cloudtrail_calls_pattern(SAGEMAKER_EVENT_SOURCE, SAGEMAKER_API_EVENT_SOURCE, SESSION_END_CALLS)


# ---- AWS Batch service jobs (issue 26 item 2) --------------------------------------------------------------------
# AWS Batch User Guide, "Service job state change events": source aws.batch, detail-type "Batch Service Job State
# Change", detail shaped like DescribeServiceJob (no tags, no serviceRequestPayload). Each attempt is its own
# SageMaker training job (detail.attempts[].serviceResourceId, name "TrainingJobArn"). Submission is SubmitServiceJob
# (CloudTrail, eventSource batch.amazonaws.com).
BATCH_EVENT_SOURCE = "aws.batch"
BATCH_SERVICE_JOB_STATE_CHANGE = "Batch Service Job State Change"
BATCH_SERVICE_JOB_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "SCHEDULED", "STARTING", "RUNNING", "SUCCEEDED",
                              "FAILED")  # fmt: skip
BATCH_TERMINAL_STATUSES = ("SUCCEEDED", "FAILED")
# The statuses whose events are read: the terminal ones (the service job's record), and those at which an attempt
# starts or ends (SCHEDULED: the training job is created; RUNNABLE: back in the queue after a preemption), so each
# attempt's own record can name its service job (flopsmeter.service.batch_attempts).
BATCH_READ_STATUSES = ("SCHEDULED", "STARTING", "RUNNING", "RUNNABLE", *BATCH_TERMINAL_STATUSES)
BATCH_API_EVENT_SOURCE = "batch.amazonaws.com"
# A SageMaker training service job's serviceJobType, and the jobQueueType of the queues that hold them.
BATCH_SAGEMAKER_TRAINING = "SAGEMAKER_TRAINING"
SUBMIT_SERVICE_JOB = "SubmitServiceJob"


def batch_service_job_state_change_pattern() -> dict[str, object]:
    """The pattern of the rule that sends a Batch service job's state changes to the classifier queue (an attempt
    started or ended, or the job ended)."""
    return {
        "source": [BATCH_EVENT_SOURCE],
        "detail-type": [BATCH_SERVICE_JOB_STATE_CHANGE],
        "detail": {"status": list(BATCH_READ_STATUSES), "serviceJobType": [BATCH_SAGEMAKER_TRAINING]},
    }


def work_launch_patterns() -> tuple[dict[str, object], ...]:
    """Every provenance rule's pattern: SageMaker launch calls (training work and training sessions) and AWS Batch
    SubmitServiceJob (its own event source)."""
    batch = cloudtrail_calls_pattern(BATCH_EVENT_SOURCE, BATCH_API_EVENT_SOURCE, (SUBMIT_SERVICE_JOB,))
    return training_launch_pattern(), batch


# What AWS Batch's SubmitServiceJob created (CloudTrail ``responseElements``): the service job's ARN.
BATCH_CREATED_ARN_FIELD = {SUBMIT_SERVICE_JOB: "jobArn"}


# ---- SageMaker HyperPod (issue 26 point 3): jobs outside SageMaker's job APIs, reported by their own meter --------
# The meter inside a HyperPod job (Slurm or EKS) sends one report when the job ends to the service's reports queue
# (FLOPSMETER_REPORT_QUEUE_URL), signed with the job's own IAM credentials. The service reads who sent it from SQS's
# SenderId (set by SQS from the authenticated request: "<role unique id>:<session name>"), never from the body, and
# ties the sender to the cluster the body names (docs/hyperpod.md). The body's own fields are claims.
HYPERPOD_REPORT_KIND = "FlopsMeter HyperPod Job Report"
HYPERPOD_REPORT_VERSION = 1
ENV_REPORT_QUEUE_URL = "FLOPSMETER_REPORT_QUEUE_URL"  # set on the job: where the meter sends its report
ENV_HYPERPOD_CLUSTER = "FLOPSMETER_HYPERPOD_CLUSTER"  # set on the job: the cluster's name (or ARN)
# An IAM role that EKS pods use (IRSA / EKS Pod Identity) is tied to its cluster by this tag, set by whoever administers
# IAM (a Slurm node's instance role needs none: it is the cluster's instance-group ExecutionRole).
TAG_HYPERPOD_CLUSTER = "flopsmeter:hyperpod-cluster"
