"""``flopsmeter local replay EVENT.json``: one EventBridge event through EventBridge -> SQS -> the real handler.

The event is taken as it is (the AWS documentation's example works unchanged). The service reads the job back
(DescribeTrainingJob, GetModelCustomizationJob), so a job the emulator does not know is first registered from the
event's ``detail`` with every field the service would read (``flopsmeter.local.replay_fields``), and the output
says which fields were registered, assumed or left out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flopsmeter import contract
from flopsmeter.errors import FlopsMeterError
from flopsmeter.functions.inbound import SESSION_ENDED_TAG, event_tag
from flopsmeter.local import replay_fields as jobs
from flopsmeter.local import replay_sessions_batch as others
from flopsmeter.local.provision import LocalResources
from flopsmeter.local.replay_fields import Registration
from flopsmeter.local.runner import DrainReport, drain, put_state_change

DOCS_EXAMPLE = Path(__file__).with_name("events") / "aws_docs_training_job_state_change.json"


@dataclass(frozen=True)
class Registrar:
    """How to find and register the job of one kind of event."""

    name_of: Callable[[Mapping[str, Any]], Any]  # the job's name (or id) in the event's detail
    exists: Callable[[LocalResources, str], bool]
    register: Callable[[LocalResources, Mapping[str, Any]], Registration]


def _field(name: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda detail: detail.get(name)


# The event's tag (its detail-type; a CloudTrail call that ends a training session has its own) -> its registrar.
REGISTRARS: dict[str, Registrar] = {
    contract.TRAINING_JOB_STATE_CHANGE: Registrar(
        _field("TrainingJobName"), jobs.training_job_exists, jobs.register_training_job
    ),
    contract.MODEL_CUSTOMIZATION_JOB_STATE_CHANGE: Registrar(
        _field("jobName"), jobs.bedrock_job_exists, jobs.register_bedrock_job
    ),
    SESSION_ENDED_TAG: Registrar(others.session_name, others.training_session_exists, others.register_training_session),
    contract.BATCH_SERVICE_JOB_STATE_CHANGE: Registrar(
        _field("jobId"), others.service_job_exists, others.register_batch_service_job
    ),
}


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
    registration: Registration | None = None  # what the job was registered with (None: it existed, or no kind)


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


def _s3(resources: LocalResources) -> Any:
    from flopsmeter.local.clients import client

    return client("s3", resources.endpoint, resources.region)


def record_keys_for(resources: LocalResources, job_name: str) -> list[str]:
    from flopsmeter.audit.keys import BATCH_RECORD_PREFIX, BEDROCK_RECORD_PREFIX, SESSION_RECORD_PREFIX, records_prefix

    s3 = _s3(resources)
    names = {f"{prefix}{job_name}.json" for prefix in ("", BEDROCK_RECORD_PREFIX, SESSION_RECORD_PREFIX,
                                                       BATCH_RECORD_PREFIX)}  # fmt: skip
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=resources.audit_bucket, Prefix=records_prefix(resources.account_id, resources.region)
    ):
        keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].rsplit("/", 1)[-1] in names]
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
    registrar = REGISTRARS.get(str(event_tag(event)))
    name = registrar.name_of(detail) if registrar and isinstance(detail, dict) else None
    notes: list[str] = []
    registration = None
    if registrar is None:
        notes.append(
            f"no job kind registers from a {event.get('detail-type')!r} event (known: {', '.join(REGISTRARS)}): "
            "put on the bus as it is"
        )
    elif isinstance(name, str) and register_missing:
        try:
            exists = registrar.exists(resources, name)
        except Exception:  # noqa: BLE001 - an odd name is the handler's to judge
            exists = True
        if not exists:
            registration = registrar.register(resources, detail)  # type: ignore[arg-type]
            notes.append(
                f"{registration.kind} {name!r} did not exist in the emulator: registered it from the event's detail "
                f"first (the service reads the job back, not the event) in {resources.account_id}/{resources.region}"
            )
            notes += registration.lines()
    if event.get("region") and event.get("region") != resources.region:
        notes.append(
            f"the event names region {event['region']}; the emulator runs {resources.region} "
            "(EventBridge stamps its own region, account, id and time on the envelope)"
        )
    event_id = put_state_change(resources, event)
    matched = _depth(resources) > 0
    if not matched:
        notes.append(
            "the rules into the classifier queue did not match (they forward training and Bedrock jobs' "
            f"{', '.join(sorted(contract.TERMINAL_STATUSES))} state changes, a successful "
            f"{' or '.join(contract.SESSION_END_CALLS)} call, and an AWS Batch SAGEMAKER_TRAINING service job's "
            f"{', '.join(contract.BATCH_READ_STATUSES)} changes): nothing to classify"
        )
    report = drain(resources, log_path=log_path, deadline_s=deadline_s)
    keys = record_keys_for(resources, name) if isinstance(name, str) else []
    named = name if isinstance(name, str) else None
    return ReplayResult(event_id, named, registration is not None, matched, report, keys, notes, registration)


def _depth(resources: LocalResources) -> int:
    from flopsmeter.local.clients import client

    sqs = client("sqs", resources.endpoint, resources.region)
    attrs = sqs.get_queue_attributes(QueueUrl=resources.queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attrs["Attributes"].get("ApproximateNumberOfMessages", 0))
