"""The events the functions receive, as one pydantic discriminated union on ``detail-type`` (Powertools parser).

* ``TrainingJobStateChange``: EventBridge's "SageMaker Training Job State Change" (``detail`` shaped like
  DescribeTrainingJob, times in epoch milliseconds as numbers or numeric strings, as in the AWS docs' example);
  SageMaker's serverless model customization jobs arrive this way too;
* ``ModelCustomizationJobStateChange``: Amazon Bedrock's "Model Customization Job State Change" (shape: Amazon
  Bedrock User Guide, "How EventBridge for Amazon Bedrock works"; its sample's ``id`` "UUID" and ``version`` "0.0"
  are accepted);
* ``LaunchCall``: "AWS API Call via CloudTrail" for a successful SageMaker call that creates training work
  (``contract.training_launch_pattern``, CreateTrainingSession included) or AWS Batch's SubmitServiceJob;
* ``TrainingSessionEnded``: "AWS API Call via CloudTrail" for a successful StopTrainingSession or
  DeleteTrainingSession (told apart from launch calls by ``eventName``);
* ``BatchServiceJobStateChange``: AWS Batch's "Batch Service Job State Change" (shape: AWS Batch User Guide,
  "Service job state change events"; ``detail`` like DescribeServiceJob without tags and payload).

Only what the service needs is validated (a job's name, ARN and status; a launch call's source, name and success):
DescribeTrainingJob and GetModelCustomizationJob are authoritative for the rest, and fields the service does not
need pass through unvalidated, so a new field from AWS never makes an event "malformed". A new kind of event is one
more model here and one more ``Tag``-ged member of ``InboundEvent``; the handler that reads it names it in its
``accept``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
)

from flopsmeter import contract
from flopsmeter.audit.keys import valid_job_name
from flopsmeter.domain.times import as_utc
from flopsmeter.errors import MalformedEvent
from flopsmeter.ports import LaunchCall as LaunchCallValue

MAX_REASON = 1000  # characters of a MalformedEvent's reason (it becomes a DLQ message attribute)


def _one_of(allowed: tuple[str, ...]) -> AfterValidator:
    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(repr(a) for a in allowed)}")
        return value

    return AfterValidator(check)


JobStatus = Annotated[str, _one_of(contract.JOB_STATUSES)]
AccountId = Annotated[str, StringConstraints(pattern=r"^[0-9]{12}$")]
EventId = Annotated[str, Field(min_length=1, max_length=128)]

# --- SageMaker training jobs --------------------------------------------------------------------------------------

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

    DETAIL_TYPE: ClassVar[str] = contract.TRAINING_JOB_STATE_CHANGE

    id: EventId
    account: AccountId  # organization mode: whose job it is
    source: Annotated[str, _one_of((contract.SAGEMAKER_EVENT_SOURCE,))]
    detail_type: Annotated[str, _one_of((DETAIL_TYPE,))] = Field(alias="detail-type")
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


# --- Amazon Bedrock model customization jobs ----------------------------------------------------------------------

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

    DETAIL_TYPE: ClassVar[str] = contract.MODEL_CUSTOMIZATION_JOB_STATE_CHANGE

    id: EventId
    source: Annotated[str, _one_of((contract.BEDROCK_EVENT_SOURCE,))]
    detail_type: Annotated[str, _one_of((DETAIL_TYPE,))] = Field(alias="detail-type")
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


# --- CloudTrail launch calls (capture at launch) ------------------------------------------------------------------


def _absent(value: object) -> None:
    if value:
        raise ValueError("the call was refused: it created nothing")
    return None


class LaunchCallDetail(BaseModel):
    """CloudTrail's record of the call. Identity, request and response are read leniently by the service."""

    model_config = ConfigDict(extra="allow", frozen=True)

    eventSource: Annotated[str, _one_of((contract.SAGEMAKER_API_EVENT_SOURCE, contract.BATCH_API_EVENT_SOURCE))]
    eventName: Annotated[str, _one_of((*contract.LAUNCH_EVENT_NAMES, contract.SUBMIT_SERVICE_JOB))]
    errorCode: Annotated[object, AfterValidator(_absent)] = None
    eventID: object = None
    eventTime: object = None
    userIdentity: object = None
    sourceIPAddress: object = None
    userAgent: object = None
    requestParameters: object = None
    responseElements: object = None


class LaunchCall(BaseModel):
    """An "AWS API Call via CloudTrail" event of a successful SageMaker launch call (only ``detail-type`` and
    ``detail`` are required: the envelope's other fields are not read)."""

    DETAIL_TYPE: ClassVar[str] = contract.CLOUDTRAIL_API_CALL

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    detail_type: Annotated[str, _one_of((DETAIL_TYPE,))] = Field(alias="detail-type")
    detail: LaunchCallDetail

    def to_call(self) -> LaunchCallValue:
        d = self.detail
        return LaunchCallValue(
            event_name=d.eventName,
            event_id=str(d.eventID or ""),
            event_time=as_utc(d.eventTime),
            identity=_mapping(d.userIdentity),
            source_ip=d.sourceIPAddress,
            user_agent=d.userAgent,
            request=d.requestParameters,
            response=_mapping(d.responseElements),
        )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


# --- issue 26: training sessions ended by a call, AWS Batch service jobs -------------------------------------------

SESSION_ENDED_TAG = "Training Session Ended via CloudTrail"  # our tag: a CloudTrail call that ends a session


class SessionEndCallDetail(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    eventSource: Annotated[str, _one_of((contract.SAGEMAKER_API_EVENT_SOURCE,))]
    eventName: Annotated[str, _one_of(contract.SESSION_END_CALLS)]
    errorCode: Annotated[object, AfterValidator(_absent)] = None
    eventID: object = None
    requestParameters: dict[str, Any]
    recipientAccountId: AccountId | None = None
    awsRegion: str | None = Field(default=None, max_length=32)


class TrainingSessionEnded(BaseModel):
    """An "AWS API Call via CloudTrail" event of a successful StopTrainingSession or DeleteTrainingSession."""

    DETAIL_TYPE: ClassVar[str] = SESSION_ENDED_TAG

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    id: EventId = "unknown"
    account: AccountId | None = None
    region: str | None = Field(default=None, max_length=32)
    detail_type: Annotated[str, _one_of((contract.CLOUDTRAIL_API_CALL,))] = Field(alias="detail-type")
    detail: SessionEndCallDetail

    is_terminal: ClassVar[bool] = True  # the call ends the session (a Stopping one is retried until Stopped)
    source: ClassVar[str] = contract.SAGEMAKER_EVENT_SOURCE

    @property
    def job_name(self) -> str:
        name = self.detail.requestParameters.get("trainingSessionName")
        if not isinstance(name, str) or not valid_job_name(name):
            raise MalformedEvent("the call names no valid trainingSessionName")
        return name

    @property
    def status(self) -> str:
        return self.detail.eventName

    @property
    def session_arn(self) -> str | None:
        account = self.detail.recipientAccountId or self.account
        region = self.detail.awsRegion or self.region
        if not account or not region:
            return None
        return f"arn:aws:sagemaker:{region}:{account}:training-session/{self.job_name}"


BatchStatus = Annotated[str, _one_of(contract.BATCH_SERVICE_JOB_STATUSES)]


class BatchServiceJobDetail(BaseModel):
    """The event's ``detail``: DescribeServiceJob-shaped (no tags, no serviceRequestPayload)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    jobId: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[a-zA-Z0-9-]+$")]
    jobName: str = Field(min_length=1, max_length=128)
    jobArn: str | None = Field(default=None, max_length=1011)
    status: BatchStatus
    serviceJobType: str | None = None
    attempts: list[dict[str, Any]] = Field(default_factory=list)


class BatchServiceJobStateChange(EventBridgeModel):
    """An EventBridge event from ``aws.batch`` with detail-type "Batch Service Job State Change"."""

    DETAIL_TYPE: ClassVar[str] = contract.BATCH_SERVICE_JOB_STATE_CHANGE
    READ_BEFORE_END: ClassVar[bool] = True  # a running job's event indexes its attempts (service.batch_attempts)

    id: EventId
    account: AccountId
    source: Annotated[str, _one_of((contract.BATCH_EVENT_SOURCE,))]
    detail_type: Annotated[str, _one_of((DETAIL_TYPE,))] = Field(alias="detail-type")
    detail: BatchServiceJobDetail

    @property
    def is_terminal(self) -> bool:
        return self.detail.status in contract.BATCH_TERMINAL_STATUSES

    @property
    def job_name(self) -> str:
        return self.detail.jobId  # DescribeServiceJob takes the id; names may repeat

    @property
    def status(self) -> str:
        return self.detail.status


# --- the union ----------------------------------------------------------------------------------------------------


def event_tag(value: object) -> str | None:
    """The tag of an event: its ``detail-type`` (None, and a "malformed" reason, when there is none); a CloudTrail
    call that ends a training session is told apart by its ``eventName``."""
    tag = value.get("detail-type") if isinstance(value, Mapping) else getattr(value, "detail_type", None)
    if tag == contract.CLOUDTRAIL_API_CALL:
        detail = value.get("detail") if isinstance(value, Mapping) else getattr(value, "detail", None)
        name = detail.get("eventName") if isinstance(detail, Mapping) else getattr(detail, "eventName", None)
        if name in contract.SESSION_END_CALLS:
            return SESSION_ENDED_TAG
    return tag if isinstance(tag, str) else None


InboundEvent = Annotated[
    Annotated[TrainingJobStateChange, Tag(TrainingJobStateChange.DETAIL_TYPE)]
    | Annotated[ModelCustomizationJobStateChange, Tag(ModelCustomizationJobStateChange.DETAIL_TYPE)]
    | Annotated[LaunchCall, Tag(LaunchCall.DETAIL_TYPE)]
    | Annotated[TrainingSessionEnded, Tag(SESSION_ENDED_TAG)]
    | Annotated[BatchServiceJobStateChange, Tag(BatchServiceJobStateChange.DETAIL_TYPE)],
    Discriminator(
        event_tag,
        custom_error_type="unknown_event",
        custom_error_message="unknown or missing detail-type",
    ),
]
JobStateChange = (
    TrainingJobStateChange | ModelCustomizationJobStateChange | TrainingSessionEnded | BatchServiceJobStateChange
)


TAGS: dict[type[BaseModel], str] = {
    TrainingJobStateChange: TrainingJobStateChange.DETAIL_TYPE,
    ModelCustomizationJobStateChange: ModelCustomizationJobStateChange.DETAIL_TYPE,
    LaunchCall: LaunchCall.DETAIL_TYPE,
    TrainingSessionEnded: SESSION_ENDED_TAG,
    BatchServiceJobStateChange: BatchServiceJobStateChange.DETAIL_TYPE,
}


def parse_inbound(body: str | Mapping[str, Any], *, accept: tuple[type[BaseModel], ...] = tuple(TAGS)) -> Any:
    """``body`` (JSON text or an already decoded event) as one member of ``InboundEvent`` among ``accept``, or
    ``MalformedEvent`` with a short, bounded reason (no input echoed)."""
    try:
        # parse() validates a JSON string directly (pydantic validate_json), though it is typed for dicts
        event = parse(event=body, model=InboundEvent)  # type: ignore[call-overload]
    except ValidationError as err:
        raise MalformedEvent(_reason(err, accept)) from None
    if not isinstance(event, accept):
        raise MalformedEvent(f"{_not_a(accept)}: {TAGS[type(event)]!r} events are read by another function")
    return event


def _reason(err: ValidationError, accept: tuple[type[BaseModel], ...]) -> str:
    """``not a <kind> event: <where>: <why>; ...`` (at most ten problems), the kind being the member the event's
    ``detail-type`` chose when it is one ``accept`` names."""
    problems = err.errors(include_url=False, include_input=False)
    chosen = {TAGS[member] for member in accept}
    tagged = bool(problems) and all(p["loc"][:1] and p["loc"][0] in chosen for p in problems)
    kind = f"not {_article(str(problems[0]['loc'][0]))} event" if tagged else _not_a(accept)
    described = "; ".join(
        f"{'.'.join(str(part) for part in (p['loc'][1:] if tagged else p['loc'])) or 'body'}: {p['msg']}"
        for p in problems[:10]
    )
    return f"{kind}: {described}"[:MAX_REASON]


def _not_a(accept: tuple[type[BaseModel], ...]) -> str:
    return "not " + " or ".join(_article(TAGS[member]) for member in accept) + " event"


def _article(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "AEIOU" else f"a {kind}"
