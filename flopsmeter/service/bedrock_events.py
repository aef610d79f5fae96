"""Edge model (pydantic v2, Powertools parser) of Amazon Bedrock's "Model Customization Job State Change" event.

Shape: Amazon Bedrock User Guide, "How EventBridge for Amazon Bedrock works" (its sample event is replayed
unchanged in the tests: ``tests/events/bedrock_model_customization_job_state_change_aws_docs.json``). Only the
job's name, ARN and status are trusted from the event: GetModelCustomizationJob is authoritative for the rest.
Fields the service does not need pass through unvalidated, so a new field from AWS never makes an event
"malformed". The sample's ``id`` is the placeholder "UUID" and its ``version`` "0.0": both are accepted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from flopsmeter import contract
from flopsmeter.service.events import JobStatus

# CreateModelCustomizationJob jobName (Bedrock API reference): 1-63 characters.
BedrockJobName = Annotated[
    str, StringConstraints(min_length=1, max_length=63, pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9+\-.])*$")
]
BedrockJobArn = Annotated[
    str,
    StringConstraints(
        max_length=1011, pattern=r"^arn:aws[a-z-]*:bedrock:[a-z0-9-]+:[0-9]{12}:model-customization-job/.+$"
    ),
]


def _equals(expected: str) -> AfterValidator:
    def check(value: str) -> str:
        if value != expected:
            raise ValueError(f"must be {expected!r}")
        return value

    return AfterValidator(check)


class ModelCustomizationJobDetail(BaseModel):
    """The event's ``detail``: GetModelCustomizationJob-shaped, with ``jobStatus`` for ``status``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    jobName: BedrockJobName
    jobArn: BedrockJobArn | None = None
    jobStatus: JobStatus
    failureMessage: str | None = None
    creationTime: datetime | None = None
    lastModifiedTime: datetime | None = None
    endTime: datetime | None = None
    baseModelArn: str | None = Field(default=None, max_length=2048)
    hyperParameters: dict[str, Any] | None = None


class ModelCustomizationJobStateChange(EventBridgeModel):
    """An EventBridge event from ``aws.bedrock`` with detail-type "Model Customization Job State Change"."""

    id: str = Field(min_length=1, max_length=128)
    source: Annotated[str, _equals(contract.BEDROCK_EVENT_SOURCE)]
    detail_type: Annotated[str, _equals(contract.MODEL_CUSTOMIZATION_JOB_STATE_CHANGE)] = Field(alias="detail-type")
    detail: ModelCustomizationJobDetail

    @property
    def is_terminal(self) -> bool:
        return self.detail.jobStatus in contract.BEDROCK_TERMINAL_STATUSES

    @property
    def job_name(self) -> str:
        return self.detail.jobName

    @property
    def status(self) -> str:
        return self.detail.jobStatus
