"""What ``flopsmeter local replay`` registers of an event's job: every field the deployed service would read.

The deployed classifier never trusts the event's ``detail``: it reads the job back (DescribeTrainingJob + ListTags,
GetModelCustomizationJob + ListTagsForResource). So a replayed job is first created in the emulator with every
field of the event that the create call accepts (checked against botocore's own input shape, one member at a time),
then moved to the event's status with what only the describe call reports (times, failure, billable time and
tokens, final metrics, model artifacts, the model package produced, the tuning or AutoML parent).

``Registration`` says, field by field, what was registered from the event, what had to be assumed (a required
member the event lacks) and what was left out (a member whose value does not fit the API's shape). Each kind of job
is one ``Registrar`` in ``flopsmeter.local.replay.REGISTRARS``; training sessions and AWS Batch service jobs register
in ``flopsmeter.local.replay_sessions_batch``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flopsmeter import contract
from flopsmeter.local import moto_ext
from flopsmeter.local.provision import LocalResources

# DescribeTrainingJob members the classifier reads (flopsmeter.service.facts, lineage_io, launcher; a test pins
# this list against those modules), and the tags (ListTags).
TRAINING_JOB_READS = (
    "TrainingJobName", "TrainingJobArn", "TrainingJobStatus", "FailureReason", "CreationTime", "TrainingStartTime",
    "TrainingEndTime", "LastModifiedTime", "ResourceConfig", "BillableTimeInSeconds", "Environment", "HyperParameters",
    "InputDataConfig", "CheckpointConfig", "OutputDataConfig", "ModelArtifacts", "ServerlessJobConfig",
    "BillableTokenCount", "ModelPackageConfig", "OutputModelPackageArn", "FinalMetricDataList", "TuningJobArn",
    "AutoMLJobArn", "Tags",
)  # fmt: skip
# GetModelCustomizationJob members the Bedrock classifier reads (flopsmeter.service.bedrock, domain.customization).
BEDROCK_JOB_READS = (
    "jobName", "jobArn", "status", "failureMessage", "creationTime", "lastModifiedTime", "endTime", "baseModelArn",
    "customizationType", "hyperParameters", "customizationConfig",
)  # fmt: skip
NOT_IN_AN_EVENT = (
    "the meter's CloudWatch series and the CloudTrail call that created the job are not part of a state-change event: "
    "a metered job replays on its FinalMetricDataList (when the event has one), else on its ceiling; the creator is "
    "the emulator's caller"
)


@dataclass
class Registration:
    """What one replayed job was registered with (field names as the API spells them)."""

    kind: str
    name: str
    registered: list[str] = field(default_factory=list)
    assumed: list[str] = field(default_factory=list)  # "Field (value): why"
    left_out: list[str] = field(default_factory=list)  # "Field: why"
    absent: list[str] = field(default_factory=list)  # read by the service, not in the event
    said: list[str] = field(default_factory=list)  # what else the replay must say about this kind
    caveat: str = NOT_IN_AN_EVENT  # what no event of this kind can carry

    def lines(self) -> list[str]:
        out = [f"registered {self.kind} {self.name!r} from the event: {', '.join(self.registered) or 'nothing'}"]
        out += [f"assumed {item}" for item in self.assumed]
        out += [f"left out {item}" for item in self.left_out]
        if self.absent:
            out.append(f"not in the event (the service reads them; the job has none): {', '.join(self.absent)}")
        return [*out, *self.said, self.caveat]


def _shape_fits(operation: str, service: str, base: Mapping[str, Any], member: str, value: Any) -> str | None:
    """None when ``value`` fits ``member`` of the operation's input shape (botocore's own validator), else why not."""
    import botocore.session
    from botocore.validate import ParamValidator

    shape = botocore.session.get_session().get_service_model(service).operation_model(operation).input_shape
    assert shape is not None  # every create call has an input
    report = ParamValidator().validate({**base, member: value}, shape)
    return report.generate_report().splitlines()[-1][:200] if report.has_errors() else None


def tags_list(raw: Any) -> list[dict[str, str]]:
    if isinstance(raw, Mapping):
        return [{"Key": str(k), "Value": str(v)} for k, v in raw.items()]
    if isinstance(raw, list):
        return [{"Key": str(t["Key"]), "Value": str(t.get("Value", ""))} for t in raw if isinstance(t, Mapping)]
    return []


def fitted(
    reg: Registration, operation: str, service: str, required: dict[str, Any], candidates: Mapping[str, Any]
) -> dict[str, Any]:
    """``required`` (event values, else assumed) plus every candidate that fits the input shape."""
    request = dict(required)
    for member, value in candidates.items():
        why = _shape_fits(operation, service, required, member, value)
        if why is None:
            request[member] = value
        else:
            reg.left_out.append(f"{member}: does not fit {operation}'s shape ({why})")
    return request


def required_members(
    reg: Registration, detail: Mapping[str, Any], defaults: Mapping[str, tuple[str, Any]], why: str
) -> dict[str, Any]:
    """Each required member from the event (``defaults``: member -> (event field, assumed value))."""
    values: dict[str, Any] = {}
    for member, (source, assumed) in defaults.items():
        value = detail.get(source)
        if value in (None, "", {}):
            value = assumed
            reg.assumed.append(f"{member} ({assumed!r}): the event has none; {why}")
        values[member] = value
    return values


def register_training_job(resources: LocalResources, detail: Mapping[str, Any]) -> Registration:
    """Create the event's training job with every CreateTrainingJob member the event carries, then move it to the
    event's status with the members only DescribeTrainingJob reports."""
    from flopsmeter.local.clients import client

    name = str(detail["TrainingJobName"])
    reg = Registration("training job", name)
    account = resources.account_id
    required = required_members(
        reg,
        detail,
        {
            "RoleArn": ("RoleArn", f"arn:aws:iam::{account}:role/SageMakerRole"),
            "OutputDataConfig": ("OutputDataConfig", {"S3OutputPath": "s3://replayed/output"}),
        },
        "the service does not read it",
    )
    required["TrainingJobName"] = name
    members = create_members("sagemaker", "CreateTrainingJob")
    candidates = {k: v for k, v in detail.items() if k in members and k not in required and k != "Tags"}
    if "Tags" in detail:
        candidates["Tags"] = tags_list(detail["Tags"])
    request = fitted(reg, "CreateTrainingJob", "sagemaker", required, candidates)
    if "ResourceConfig" not in request and "ServerlessJobConfig" not in request:
        reg.left_out.append(
            "ResourceConfig: the event names no instances; the job is registered without them (the classifier's "
            "unknown-instance placeholder bounds it, conservatively)"
        )
    client("sagemaker", resources.endpoint, resources.region).create_training_job(**request)
    state = _training_state(detail)
    moto_ext.set_training_job_state(
        name, state, account_id=account, region=resources.region, endpoint=resources.endpoint
    )
    kept = [k for k in request if k in TRAINING_JOB_READS or k == "Tags"]
    reg.registered = sorted({*kept, *(k for k in _DESCRIBE_ONLY if detail.get(k) not in (None, "", [], {}))})
    reg.absent = [k for k in TRAINING_JOB_READS if k not in detail and k != "TrainingJobArn"]
    return reg


_DESCRIBE_ONLY = (
    "TrainingJobStatus", "CreationTime", "TrainingStartTime", "TrainingEndTime", "FailureReason",
    "BillableTimeInSeconds", "BillableTokenCount", "FinalMetricDataList", "ModelArtifacts", "OutputModelPackageArn",
    "TuningJobArn", "AutoMLJobArn",
)  # fmt: skip


def _training_state(detail: Mapping[str, Any]) -> moto_ext.JobState:
    status = str(detail.get("TrainingJobStatus") or "Completed")
    metrics = {
        str(m["MetricName"]): float(m["Value"])
        for m in detail.get("FinalMetricDataList") or []
        if isinstance(m, Mapping) and isinstance(m.get("Value"), int | float) and m.get("MetricName")
    }
    billable = detail.get("BillableTimeInSeconds")
    tokens = detail.get("BillableTokenCount")
    artifacts = (detail.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    return moto_ext.JobState(
        status=status if status in contract.JOB_STATUSES else None,
        creation=parse_time(detail.get("CreationTime")),
        start=parse_time(detail.get("TrainingStartTime")),
        end=parse_time(detail.get("TrainingEndTime")),
        failure_reason=detail.get("FailureReason"),
        billable_seconds=int(billable) if isinstance(billable, int | float) else None,
        billable_tokens=int(tokens) if isinstance(tokens, int | float) else None,
        final_metrics=metrics,
        launched_by=detail.get("TuningJobArn") or detail.get("AutoMLJobArn"),
        model_artifacts=str(artifacts) if artifacts else None,
        output_model_package=detail.get("OutputModelPackageArn"),
    )


def parse_time(value: Any) -> datetime | None:
    """An event's time: epoch milliseconds (number or numeric string, as SageMaker's events carry them) or ISO 8601."""
    if value in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(float(value) / 1000.0, UTC)
    except (TypeError, ValueError):
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def create_members(service: str, operation: str) -> tuple[str, ...]:
    import botocore.session

    shape = botocore.session.get_session().get_service_model(service).operation_model(operation).input_shape
    return tuple(shape.members) if shape is not None else ()


def register_bedrock_job(resources: LocalResources, detail: Mapping[str, Any]) -> Registration:
    """Create the event's Bedrock model customization job with every CreateModelCustomizationJob member the event
    carries (``baseModelArn`` as the identifier, ``outputModelName`` as the custom model's name), then move it to the
    event's status, keeping the event's own job and base-model ARNs."""
    from flopsmeter.local.clients import client

    name = str(detail["jobName"])
    reg = Registration("Bedrock model customization job", name)
    base_arn = str(detail.get("baseModelArn") or "")
    identifier = base_arn.split("foundation-model/", 1)[-1] if base_arn else ""
    renamed = {**detail, "baseModelIdentifier": identifier, "customModelName": detail.get("outputModelName")}
    required = required_members(
        reg,
        renamed,
        {
            "customModelName": ("customModelName", f"{name}-model"),
            "roleArn": ("roleArn", f"arn:aws:iam::{resources.account_id}:role/BedrockCustomization"),
            "baseModelIdentifier": ("baseModelIdentifier", "unknown-base-model"),
            "trainingDataConfig": ("trainingDataConfig", {"s3Uri": "s3://replayed/train.jsonl"}),
            "outputDataConfig": ("outputDataConfig", {"s3Uri": "s3://replayed/output/"}),
        },
        "the Bedrock classifier does not read it (a base model the event lacks stays unknown: conservative)",
    )
    required["jobName"] = name
    members = create_members("bedrock", "CreateModelCustomizationJob")
    candidates = {k: v for k, v in detail.items() if k in members and k not in required}
    request = fitted(reg, "CreateModelCustomizationJob", "bedrock", required, candidates)
    client("bedrock", resources.endpoint, resources.region).create_model_customization_job(**request)
    status = str(detail.get("jobStatus") or "Completed")
    moto_ext.set_model_customization_job_state(
        name,
        moto_ext.CustomizationJobState(
            status=status if status in contract.JOB_STATUSES else None,
            creation=parse_time(detail.get("creationTime")),
            end=parse_time(detail.get("endTime")),
            failure_message=detail.get("failureMessage"),
            job_arn=detail.get("jobArn"),
            base_model_arn=base_arn or None,
        ),
        account_id=resources.account_id,
        region=resources.region,
        endpoint=resources.endpoint,
    )
    present = {("status" if k == "jobStatus" else k) for k, v in detail.items() if v not in (None, "", {}, [])}
    reg.registered = sorted(k for k in present if k in BEDROCK_JOB_READS)
    reg.absent = [k for k in BEDROCK_JOB_READS if k not in present and k not in ("lastModifiedTime",)]
    return reg


def training_job_exists(resources: LocalResources, name: str) -> bool:
    from flopsmeter.local.clients import client

    return exists(lambda: client("sagemaker", resources.endpoint, resources.region).describe_training_job(
        TrainingJobName=name))  # fmt: skip


def bedrock_job_exists(resources: LocalResources, name: str) -> bool:
    from flopsmeter.local.clients import client

    return exists(lambda: client("bedrock", resources.endpoint, resources.region).get_model_customization_job(
        jobIdentifier=name))  # fmt: skip


def exists(describe: Callable[[], Any]) -> bool:
    from botocore.exceptions import ClientError

    try:
        describe()
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in {"ValidationException", "ResourceNotFound",
                                                          "ResourceNotFoundException"}:  # fmt: skip
            return False
        raise
    return True
