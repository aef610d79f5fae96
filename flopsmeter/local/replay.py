"""``flopsmeter local replay EVENT.json``: one EventBridge event through EventBridge -> SQS -> the real handler.

The event is taken as it is (the AWS documentation's example works unchanged). DescribeTrainingJob is
authoritative for the service, so a job the emulator does not know is first registered from the event's
``detail`` (name, role, image, instance type/count, times, status), and the output says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flopsmeter import contract
from flopsmeter.errors import FlopsMeterError
from flopsmeter.local import moto_ext
from flopsmeter.local.provision import LocalResources
from flopsmeter.local.runner import DrainReport, drain, put_state_change

DOCS_EXAMPLE = Path(__file__).with_name("events") / "aws_docs_training_job_state_change.json"


class ReplayError(FlopsMeterError):
    """The file is not an EventBridge event this command can put on the bus."""


@dataclass
class ReplayResult:
    event_id: str
    job_name: str | None
    registered: bool
    matched_rule: bool
    report: DrainReport
    record_keys: list[str]
    notes: list[str]


def load_event(path: Path | str) -> dict[str, Any]:
    try:
        event = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ReplayError(f"cannot read {path}: {err.strerror or err}") from err
    except ValueError as err:
        raise ReplayError(f"{path} is not JSON: {err}") from err
    if not isinstance(event, dict) or "detail-type" not in event or "source" not in event:
        raise ReplayError(f"{path} is not an EventBridge event (needs 'source', 'detail-type' and 'detail')")
    return event


def _clients(resources: LocalResources) -> tuple[Any, Any]:
    from flopsmeter.local.clients import client

    return (
        client("sagemaker", resources.endpoint, resources.region),
        client("s3", resources.endpoint, resources.region),
    )


def _epoch_ms_or_iso(value: Any) -> datetime | None:
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


def job_exists(sagemaker: Any, name: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        sagemaker.describe_training_job(TrainingJobName=name)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in {"ValidationException", "ResourceNotFound"}:
            return False
        raise
    return True


def register_job_from_detail(resources: LocalResources, detail: dict[str, Any]) -> str:
    """Create the event's job in the emulator and move it to the event's status and times."""
    sagemaker, _ = _clients(resources)
    name = str(detail["TrainingJobName"])
    algorithm = detail.get("AlgorithmSpecification") or {}
    resource = detail.get("ResourceConfig") or {}
    output = detail.get("OutputDataConfig") or {}
    tags = detail.get("Tags") or {}
    sagemaker.create_training_job(
        TrainingJobName=name,
        RoleArn=str(detail.get("RoleArn") or f"arn:aws:iam::{resources.account_id}:role/SageMakerRole"),
        AlgorithmSpecification={
            "TrainingImage": str(algorithm.get("TrainingImage") or "replayed"),
            "TrainingInputMode": str(algorithm.get("TrainingInputMode") or "File"),
        },
        OutputDataConfig={"S3OutputPath": str(output.get("S3OutputPath") or "s3://replayed/output")},
        ResourceConfig={
            "InstanceType": str(resource.get("InstanceType") or "ml.m5.large"),
            "InstanceCount": int(resource.get("InstanceCount") or 1),
            "VolumeSizeInGB": int(resource.get("VolumeSizeInGB") or 1),
        },
        StoppingCondition={
            "MaxRuntimeInSeconds": int((detail.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds") or 86400)
        },
        Tags=[{"Key": str(k), "Value": str(v)} for k, v in tags.items()] if isinstance(tags, dict) else [],
        Environment={str(k): str(v) for k, v in (detail.get("Environment") or {}).items()},
    )
    status = str(detail.get("TrainingJobStatus") or "Completed")
    moto_ext.set_training_job_state(
        name,
        moto_ext.JobState(
            status=status if status in contract.JOB_STATUSES else None,
            creation=_epoch_ms_or_iso(detail.get("CreationTime")),
            start=_epoch_ms_or_iso(detail.get("TrainingStartTime")),
            end=_epoch_ms_or_iso(detail.get("TrainingEndTime")),
            failure_reason=detail.get("FailureReason"),
        ),
        account_id=resources.account_id,
        region=resources.region,
        endpoint=resources.endpoint,
    )
    return name


def record_keys_for(resources: LocalResources, job_name: str) -> list[str]:
    from flopsmeter.audit.keys import records_prefix

    _, s3 = _clients(resources)
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=resources.audit_bucket, Prefix=records_prefix(resources.account_id, resources.region)
    ):
        keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(f"/{job_name}.json")]
    return keys


def replay(
    resources: LocalResources,
    event: dict[str, Any],
    *,
    register_missing: bool = True,
    log_path: Path | None = None,
    deadline_s: float = 90.0,
) -> ReplayResult:
    detail = event.get("detail")
    name = detail.get("TrainingJobName") if isinstance(detail, dict) else None
    notes: list[str] = []
    registered = False
    if isinstance(name, str) and register_missing:
        sagemaker, _ = _clients(resources)
        try:
            exists = job_exists(sagemaker, name)
        except Exception:  # noqa: BLE001 - an odd name is the handler's to judge
            exists = True
        if not exists:
            register_job_from_detail(resources, detail)  # type: ignore[arg-type]
            registered = True
            notes.append(
                f"training job {name!r} did not exist in the emulator: registered it from the event's "
                f"detail first (DescribeTrainingJob is authoritative for the classifier) in "
                f"{resources.account_id}/{resources.region}"
            )
    if event.get("region") and event.get("region") != resources.region:
        notes.append(
            f"the event names region {event['region']}; the emulator runs {resources.region} "
            "(EventBridge stamps its own region, account, id and time on the envelope)"
        )
    event_id = put_state_change(resources, event)
    queued = _depth(resources)
    matched = queued > 0
    if not matched:
        status = detail.get("TrainingJobStatus") if isinstance(detail, dict) else None
        notes.append(
            f"the rule {resources.rule_name!r} did not match (status {status!r}; it forwards only "
            f"{', '.join(sorted(contract.TERMINAL_STATUSES))} {contract.TRAINING_JOB_STATE_CHANGE} events): "
            "nothing to classify"
        )
    report = drain(resources, log_path=log_path, deadline_s=deadline_s)
    keys = record_keys_for(resources, name) if isinstance(name, str) else []
    return ReplayResult(event_id, name if isinstance(name, str) else None, registered, matched, report, keys, notes)


def _depth(resources: LocalResources) -> int:
    from flopsmeter.local.clients import client

    sqs = client("sqs", resources.endpoint, resources.region)
    attrs = sqs.get_queue_attributes(QueueUrl=resources.queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attrs["Attributes"].get("ApproximateNumberOfMessages", 0))
