"""What ``flopsmeter local replay`` registers of a training session's or an AWS Batch service job's event.

* A **training session** sends no state-change event: the service classifies it on the CloudTrail call that ended it
  (StopTrainingSession / DeleteTrainingSession, "AWS API Call via CloudTrail"), which names only the session. The
  replay opens the session through CreateTrainingSession with every required member assumed on the conservative side
  (an unknown base, the larger LoRA rank), backdates it to the call's time and ends it as the call did; with no
  ``BillableTokenUsage`` the service counts the tokens where the session's cost reaches 1e25 FLOPs.
* An **AWS Batch service job** event carries the job as DescribeServiceJob reports it, less ``tags`` and
  ``serviceRequestPayload``. The replay submits it through SubmitServiceJob (the payload assumed empty), then gives
  the emulated job the event's id, ARN, attempts and times; an attempt whose training job the emulator lacks is
  counted by the service at its hardware ceiling, and the replay says so.

Each registration says what it registered, assumed and could not know (``Registration``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flopsmeter.domain.sessions import DEFAULT_RANK
from flopsmeter.local import moto_ext
from flopsmeter.local.provision import LocalResources
from flopsmeter.local.replay_fields import (
    Registration,
    create_members,
    exists,
    fitted,
    parse_time,
    required_members,
)

# TrainingSessionDetail members the session classifier reads (flopsmeter.service.sessions, domain.sessions; a test
# pins this list against those modules).
SESSION_READS = (
    "TrainingSessionName", "TrainingSessionArn", "TrainingSessionStatus", "CreationTime", "LastModifiedTime",
    "EndTime", "ErrorDetails", "BillableTokenUsage", "LoraConfig", "ModelConfig", "ModelPackageGroupArn", "Tags",
)  # fmt: skip
# DescribeServiceJob members the Batch classifier reads (flopsmeter.service.batch, batch_attempts).
BATCH_JOB_READS = (
    "jobId", "jobArn", "jobName", "status", "statusReason", "jobQueue", "createdAt", "startedAt", "stoppedAt",
    "serviceRequestPayload", "attempts", "preemptionSummary",
)  # fmt: skip
SESSION_CAVEAT = (
    "a training session sends no state-change event: it replays from the CloudTrail call that ended it, which names "
    "only the session; the person who opened it is the emulator's caller"
)
BATCH_CAVEAT = (
    "AWS Batch leaves tags and serviceRequestPayload out of its events; the person who submitted the job is the "
    "emulator's caller"
)
_ENDED_BY = {"StopTrainingSession": "Stopped", "DeleteTrainingSession": "Deleting"}


def session_name(detail: Mapping[str, Any]) -> Any:
    params = detail.get("requestParameters")
    return params.get("trainingSessionName") if isinstance(params, Mapping) else None


def training_session_exists(resources: LocalResources, name: str) -> bool:
    from flopsmeter.local.clients import client

    return exists(lambda: client("sagemaker", resources.endpoint, resources.region).describe_training_session(
        TrainingSessionName=name))  # fmt: skip


def register_training_session(resources: LocalResources, detail: Mapping[str, Any]) -> Registration:
    """Open the call's session with every required member assumed, then end it at the call's time as the call did."""
    from flopsmeter.local.clients import client

    name = str(session_name(detail))
    reg = Registration("training session", name, caveat=SESSION_CAVEAT)
    account, region = resources.account_id, resources.region
    unknown_base = f"arn:aws:sagemaker:{region}:aws:hub-content/SageMakerPublicHub/Model/unknown-base-model"
    request = {"TrainingSessionName": name}
    request |= required_members(
        reg, {}, {"ModelConfig": ("ModelConfig", {"BaseModelArn": unknown_base})},
        "the call names no base model; an unknown base is classified against the 3.3e22 FLOPs fallback threshold",
    )  # fmt: skip
    request |= required_members(
        reg, {}, {"LoraConfig": ("LoraConfig", {"Rank": DEFAULT_RANK, "Alpha": DEFAULT_RANK})},
        "the call names no LoRA rank; the larger reading of the usual ranks",
    )  # fmt: skip
    request |= required_members(
        reg, {}, {"RoleArn": ("RoleArn", f"arn:aws:iam::{account}:role/SageMakerTrainingSession"),
                  "OutputConfig": ("OutputConfig", {"S3Location": {"Path": "s3://replayed/sessions/"}})},
        "the service does not read it",
    )  # fmt: skip
    client("sagemaker", resources.endpoint, region).create_training_session(**request)
    when = parse_time(detail.get("eventTime"))
    if when is None:
        when = datetime.now(UTC)
        reg.assumed.append(f"EndTime ({when.isoformat()}): the call has no eventTime; the replay's own time")
    reg.assumed.append(f"CreationTime ({when.isoformat()}): the call does not say when the session was opened")
    status = _ENDED_BY.get(str(detail.get("eventName")), "Stopped")
    moto_ext.set_training_session_state(
        name, moto_ext.SessionState(status=status, creation=when, end=when),
        account_id=account, region=region, endpoint=resources.endpoint,
    )  # fmt: skip
    reg.registered = ["TrainingSessionName", "TrainingSessionStatus", *(["EndTime"] if detail.get("eventTime") else [])]
    reg.absent = [k for k in SESSION_READS if k not in (*reg.registered, *request, "TrainingSessionArn",
                                                         "CreationTime", "LastModifiedTime", "EndTime")]  # fmt: skip
    reg.said.append(
        "no BillableTokenUsage: the service counts the training tokens at which the session's cost reaches 1e25 FLOPs "
        "(AI Act Art. 51(2)); the record stays on that side until the session's usage is declared"
    )
    return reg


def service_job_exists(resources: LocalResources, job_id: str) -> bool:
    from botocore.exceptions import ClientError

    from flopsmeter.local.clients import client

    try:
        client("batch", resources.endpoint, resources.region).describe_service_job(jobId=job_id)
    except ClientError as err:
        if "not found" in str(err.response.get("Error", {}).get("Message", "")).lower():
            return False
        raise
    return True


def register_batch_service_job(resources: LocalResources, detail: Mapping[str, Any]) -> Registration:
    """Submit the event's service job with every SubmitServiceJob member the event carries, then give it the event's
    id, ARN, attempts and times (what only DescribeServiceJob reports)."""
    from flopsmeter.local.clients import client

    job_id = str(detail["jobId"])
    reg = Registration("AWS Batch service job", job_id, caveat=BATCH_CAVEAT)
    required = required_members(
        reg, detail, {"jobName": ("jobName", f"replayed-{job_id[:12]}"), "jobQueue": ("jobQueue", "replayed"),
                      "serviceJobType": ("serviceJobType", "SAGEMAKER_TRAINING")},
        "the service reads it only to describe the job",
    )  # fmt: skip
    required |= required_members(
        reg, detail, {"serviceRequestPayload": ("serviceRequestPayload", "{}")},
        "AWS Batch never puts it in an event; an attempt without a record is bounded at the unknown-instance "
        "placeholder ceiling instead of the requested instances",
    )  # fmt: skip
    members = create_members("batch", "SubmitServiceJob")
    candidates = {k: v for k, v in detail.items() if k in members and k not in required and k != "tags"}
    request = fitted(reg, "SubmitServiceJob", "batch", required, candidates)
    batch = client("batch", resources.endpoint, resources.region)
    emulated = batch.submit_service_job(**request)["jobId"]
    moto_ext.set_service_job_state(
        emulated, moto_ext.ServiceJobState(replayed=_rehomed(detail, resources, reg), emit=False),
        account_id=resources.account_id, region=resources.region, endpoint=resources.endpoint,
    )  # fmt: skip
    reg.registered = sorted(k for k in BATCH_JOB_READS if detail.get(k) not in (None, "", [], {}))
    reg.absent = [k for k in BATCH_JOB_READS if k not in reg.registered and k not in request]
    reg.said += _attempts_without_jobs(resources, detail)
    return reg


def _rehomed(detail: Mapping[str, Any], resources: LocalResources, reg: Registration) -> dict[str, Any]:
    """The event's detail with its ARNs moved to the emulator's account and region (the service reads the job in the
    account and region the event came from, which the emulator is)."""
    text = json.dumps(dict(detail))
    parts = str(detail.get("jobArn") or "").split(":", 5)
    if len(parts) == 6 and (parts[3], parts[4]) != (resources.region, resources.account_id):
        reg.said.append(
            f"the event's ARNs name account {parts[4]} in {parts[3]}: registered under the emulator's "
            f"{resources.account_id} in {resources.region}"
        )
        text = text.replace(f":{parts[3]}:{parts[4]}:", f":{resources.region}:{resources.account_id}:")
    return dict(json.loads(text))


def _attempts_without_jobs(resources: LocalResources, detail: Mapping[str, Any]) -> list[str]:
    """One line per attempt whose SageMaker training job the emulator does not have."""
    from flopsmeter.local.clients import client
    from flopsmeter.service.batch_attempts import attempts_of

    sagemaker = client("sagemaker", resources.endpoint, resources.region)
    lines = []
    for attempt in attempts_of(detail):
        name = attempt.arn.rsplit("/", 1)[-1]
        if not exists(lambda n=name: sagemaker.describe_training_job(TrainingJobName=n)):  # type: ignore[misc]
            lines.append(
                f"attempt {name}: the emulator has no such training job, so the service counts it from the "
                "submitted request (none here: no instance count, so at the AI Act's 1e25 presumption); replay the "
                "attempt's own SageMaker event first to have it recorded and summed"
            )
    return lines
