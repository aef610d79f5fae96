"""Capture at launch: who created a training job, tuning job, pipeline execution or AutoML job, stored once by key.

An EventBridge rule on "AWS API Call via CloudTrail" (``flopsmeter.contract.training_launch_pattern``) hands each
successful launch call to ``capture_launch``, which stores one small immutable ``Provenance`` object at
``flopsmeter.audit.keys.provenance_key_for_arn(<created resource's ARN>)`` with ``If-None-Match: *`` (the first
write wins; a redelivered event is a no-op). The classifier reads it back by key (``read_provenance``): one GET per
job, however many jobs are launched, instead of scanning CloudTrail's event history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flopsmeter.audit.keys import parse_launch_arn, provenance_key_for_arn
from flopsmeter.audit.record import body_sha256, canonical_json
from flopsmeter.contract import BATCH_CREATED_ARN_FIELD, CREATED_ARN_FIELD
from flopsmeter.domain.times import utcnow
from flopsmeter.errors import MalformedEvent, PermanentStoreError
from flopsmeter.ports import IndexStore, LaunchCall, RecordStore
from flopsmeter.service.facts import clean_text

# The request parameters worth keeping (dotted paths into ``requestParameters``); CloudTrail hides environment and
# hyper-parameters anyway. Everything else is left out: the object stays small and holds no secrets.
REQUEST_FIELDS = {
    "CreateTrainingJob": ("trainingJobName", "roleArn", "resourceConfig.instanceType", "resourceConfig.instanceCount"),
    "CreateHyperParameterTuningJob": (
        "hyperParameterTuningJobName",
        "hyperParameterTuningJobConfig.resourceLimits.maxNumberOfTrainingJobs",
        "hyperParameterTuningJobConfig.resourceLimits.maxParallelTrainingJobs",
        "trainingJobDefinition.roleArn",
        "trainingJobDefinition.resourceConfig.instanceType",
    ),
    "StartPipelineExecution": ("pipelineName", "pipelineExecutionDisplayName"),
    "CreateAutoMLJob": ("autoMLJobName", "roleArn"),
    "CreateAutoMLJobV2": ("autoMLJobName", "roleArn"),
    "CreateTrainingSession": ("trainingSessionName", "roleArn", "modelConfig.baseModelArn", "loraConfig.rank",
                              "modelPackageGroupArn"),
    "SubmitServiceJob": ("jobName", "jobQueue", "serviceJobType", "shareIdentifier", "quotaShareName"),
}  # fmt: skip
PROVENANCE_SCHEMA_VERSION = 1


class Provenance(BaseModel):
    """The launch of one training job or parent, as CloudTrail recorded it (``sha256`` over the rest)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    kind: str
    resource_arn: str
    event_name: str
    event_id: str = Field(min_length=1)
    event_time: datetime | None = None
    account_id: str
    region: str
    principal_arn: str | None = None
    principal_type: str | None = None
    session_issuer_arn: str | None = None  # the role behind an assumed-role session
    invoked_by: str | None = None  # set when an AWS service made the call on someone's behalf
    source_ip: str | None = None
    user_agent: str | None = None
    request: dict[str, str] = Field(default_factory=dict)
    captured_at: datetime
    sha256: str = ""

    def sealed(self) -> Provenance:
        return self.model_copy(update={"sha256": body_sha256(self.model_dump(mode="json", exclude={"sha256"}))})

    def to_json_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))


@dataclass(frozen=True)
class CaptureResult:
    key: str
    written: bool  # False: already captured (a redelivered event); nothing changed
    provenance: Provenance


def capture_launch(call: LaunchCall, store: IndexStore, now: datetime | None = None) -> CaptureResult:
    """Store the provenance of one successful launch call (the provenance function parsed it from an "AWS API Call
    via CloudTrail" event: ``flopsmeter.functions.inbound.LaunchCall``)."""
    provenance = provenance_from_call(call, now or utcnow())
    key = provenance_key_for_arn(provenance.resource_arn)
    written, _version, _until = store.put_immutable(
        key, provenance.to_json_bytes(), metadata={"sha256": provenance.sha256}
    )
    return CaptureResult(key, written, provenance)


def provenance_from_call(call: LaunchCall, now: datetime) -> Provenance:
    """The sealed ``Provenance`` of one launch call; ``MalformedEvent`` when it names no resource it created."""
    name = call.event_name
    created_field = {**CREATED_ARN_FIELD, **BATCH_CREATED_ARN_FIELD}.get(name)
    if created_field is None:
        raise MalformedEvent(f"not a launch call: {name[:64]!r}")
    arn = str(call.response.get(created_field) or "")
    try:
        account, region, kind, _ = parse_launch_arn(arn)
    except ValueError as err:
        raise MalformedEvent(f"{name} event names no created resource ARN: {err}") from None
    issuer = _mapping(_mapping(call.identity.get("sessionContext")).get("sessionIssuer"))
    try:
        return Provenance(
            kind=kind,
            resource_arn=arn,
            event_name=name,
            event_id=call.event_id,
            event_time=call.event_time,
            account_id=account,
            region=region,
            principal_arn=_text(call.identity.get("arn")),
            principal_type=_text(call.identity.get("type")),
            session_issuer_arn=_text(issuer.get("arn")),
            invoked_by=_text(call.identity.get("invokedBy")),
            source_ip=_text(call.source_ip),
            user_agent=_text(call.user_agent),
            request=_request(name, call.request),
            captured_at=now,
        ).sealed()
    except ValidationError as err:
        raise MalformedEvent(f"{name} event is incomplete: {err.error_count()} invalid field(s)") from None


def read_provenance(store: RecordStore, arn: str) -> Provenance | None:
    """The stored provenance of the resource ``arn``: one GET. None when nothing was captured, or when what is there
    does not validate or match its own hash (then the caller falls back to CloudTrail). Throttling or a 5xx raises
    ``TransientStoreError``."""
    key = provenance_key_for_arn(arn)
    try:
        stored = store.get_if_exists(key)
    except PermanentStoreError:
        return None
    if stored is None:
        return None
    try:
        provenance = Provenance.model_validate_json(stored.body)
    except ValidationError:
        return None
    return provenance if provenance.sealed().sha256 == provenance.sha256 else None


def _request(name: str, params: Any) -> dict[str, str]:
    kept: dict[str, str] = {}
    for path in REQUEST_FIELDS[name]:
        value: Any = params
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is not None and not isinstance(value, Mapping | list):
            kept[path], _ = clean_text(str(value), path)  # type: ignore[assignment]
    return {k: v for k, v in kept.items() if v}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any, limit: int = 512) -> str | None:
    return None if value is None else clean_text(str(value), "provenance field", limit)[0]
