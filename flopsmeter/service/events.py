"""Edge models (pydantic v2, Powertools parser) of the events the classifier receives and the one it publishes.

``TrainingJobStateChange`` is EventBridge's "SageMaker Training Job State Change" event: ``detail`` is shaped
like DescribeTrainingJob, with times in epoch milliseconds (numbers or numeric strings, as in the AWS docs'
example). Only the job name and status are trusted from it: DescribeTrainingJob is authoritative for the rest.
Everything else the service does not need is allowed through unvalidated, so a new field from AWS never makes
an event "malformed".
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from flopsmeter import contract


def _one_of(allowed: tuple[str, ...]) -> AfterValidator:
    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(repr(a) for a in allowed)}")
        return value

    return AfterValidator(check)


JobStatus = Annotated[str, _one_of(contract.JOB_STATUSES)]

# SageMaker's own TrainingJobName pattern (also what flopsmeter.audit.keys accepts); length checked first.
JobName = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")]
JobArn = Annotated[
    str, StringConstraints(max_length=256, pattern=r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{12}:training-job/.+$")
]


class TrainingJobDetail(BaseModel):
    """The event's ``detail``: a DescribeTrainingJob-shaped snapshot of the job at the time of the change."""

    model_config = ConfigDict(extra="allow", frozen=True)

    TrainingJobName: JobName
    TrainingJobArn: JobArn | None = None
    TrainingJobStatus: JobStatus
    SecondaryStatus: str | None = Field(default=None, max_length=64)
    FailureReason: str | None = None
    CreationTime: datetime | None = None  # epoch ms (number or numeric string) or ISO 8601
    TrainingStartTime: datetime | None = None
    TrainingEndTime: datetime | None = None
    LastModifiedTime: datetime | None = None
    ResourceConfig: dict[str, Any] | None = None
    Tags: dict[str, Any] | list[Any] | None = None


class TrainingJobStateChange(EventBridgeModel):
    """An EventBridge event from ``aws.sagemaker`` with detail-type "SageMaker Training Job State Change"."""

    id: str = Field(min_length=1, max_length=128)
    account: Annotated[str, StringConstraints(pattern=r"^[0-9]{12}$")]  # organization mode: whose job it is
    source: Annotated[str, _one_of((contract.SAGEMAKER_EVENT_SOURCE,))]
    detail_type: Annotated[str, _one_of((contract.TRAINING_JOB_STATE_CHANGE,))] = Field(alias="detail-type")
    detail: TrainingJobDetail

    @property
    def is_terminal(self) -> bool:
        return self.detail.TrainingJobStatus in contract.TERMINAL_STATUSES

    @property
    def job_name(self) -> str:
        return self.detail.TrainingJobName

    @property
    def status(self) -> str:
        return self.detail.TrainingJobStatus


class ClassificationRecordedDetail(BaseModel):
    """``detail`` of the "FLOPs Classification Recorded" event the service publishes (one per new record)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    record_id: str
    record_key: str
    bucket: str
    sha256: str
    job_name: str
    job_arn: str
    job_status: str
    primary_policy: str
    outcome: Literal["below", "approaching", "exceeds"]
    worst_outcome: Literal["below", "approaching", "exceeds"]
    method: str
    classified_flops: float
    cumulative_flops: float
    threshold: float
    ratio: float
    eventbridge_event_id: str | None = None
    reconciled: bool = False
    # issue 16: the Art. 52(1) due date when a crossing starts the clock, and the job's estimated energy
    notification_due_at: datetime | None = None
    energy_kwh: float | None = None
