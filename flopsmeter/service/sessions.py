"""The classifier for SageMaker training sessions (issue 26 item 1): one ended session in, one immutable record out.

A session has no state-change event. It is classified when a StopTrainingSession or DeleteTrainingSession call
reaches the classifier queue (CloudTrail management events), and when the scheduled pass
(``flopsmeter.service.session_watch``) finds it Failed, Expired or Stopped with no record yet. DescribeTrainingSession
is authoritative; the ``estimated`` method reads its ``BillableTokenUsage`` and ``LoraConfig`` on its base model
(``ModelConfig.BaseModelArn``, ``flopsmeter.domain.sessions``). Provenance: the CreateTrainingSession call captured
at launch (who opened it), else CloudTrail. Lineage: the model packages it published to its model package group
while it ran are indexed to its record, so a later job that starts from one finds the session as its parent. A
crossing the scheduled pass saw while it ran dates the Art. 52(1) clock (never the session's end).

A session deleted before it could be described is recorded from its last running assessment, saying that the
compute after it is not known, and asking for a declaration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from flopsmeter import contract
from flopsmeter.audit.blocks import BlockInputs, with_energy_and_obligations
from flopsmeter.audit.keys import session_index_prefix, session_record_key, valid_job_name
from flopsmeter.audit.lineage_index import IndexEntry
from flopsmeter.audit.record import (
    AuditRecord,
    HardwareCeilingInfo,
    JobInfo,
    Lineage,
    PolicyClassification,
    SessionInfo,
    record_id_for,
)
from flopsmeter.domain.classification import Classification, classify
from flopsmeter.domain.customization import CustomizationEstimate
from flopsmeter.domain.hardware import hardware_ceiling
from flopsmeter.domain.pretrain import PretrainCompute
from flopsmeter.domain.sessions import estimate_training_session, token_usage
from flopsmeter.domain.times import as_utc
from flopsmeter.errors import JobNotFound, JobNotSettled, PermanentError
from flopsmeter.ports import SessionSource
from flopsmeter.service.classifier import ClassifyResult, record_job
from flopsmeter.service.customization import NO_INSTANCES, customization_block, estimated_flops, tagged_pretrain
from flopsmeter.service.dependencies import ClassifyRequest, Dependencies, ServiceConfig
from flopsmeter.service.facts import clean_text
from flopsmeter.service.launch_lookup import captured_or_looked_up
from flopsmeter.service.lineage_index import find_job
from flopsmeter.service.records import base_model_info
from flopsmeter.service.session_assessments import SessionAssessment, last_assessment, read_crossing

INSTANCE_PLACEHOLDER = "training-session"  # no instances disclosed: the ceiling's unknown-instance placeholder
RECORD_STATUS = {"Stopped": "Stopped", "Failed": "Failed", "Expired": "Expired", "Deleting": "Deleted",
                 "DeletionFailed": "Stopped"}  # fmt: skip
RECONCILED = "no call ended this session through the queue; the scheduled pass classified it"


@dataclass(frozen=True)
class SessionFacts:
    name: str
    arn: str
    account_id: str
    region: str
    status: str
    failure_reason: str | None
    creation_time: datetime
    end_time: datetime
    detail: Mapping[str, Any]
    tags: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def record_key(self) -> str:
        return session_record_key(self.account_id, self.region, self.end_time, self.name)

    @property
    def group_arn(self) -> str | None:
        group = self.detail.get("ModelPackageGroupArn")
        return group if isinstance(group, str) and group else None


def session_facts(detail: Mapping[str, Any]) -> SessionFacts:
    """The facts of a ``TrainingSessionDetail``; an unusable name, ARN or time is a permanent error."""
    name = str(detail.get("TrainingSessionName", ""))
    if not valid_job_name(name):
        raise PermanentError(f"DescribeTrainingSession returned an invalid session name {name[:80]!r}")
    arn = str(detail.get("TrainingSessionArn", ""))
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "sagemaker" or not parts[4].isdigit() or "training-session/" not in arn:
        raise PermanentError(f"not a SageMaker training session ARN: {arn[:120]!r}")
    created = as_utc(detail.get("CreationTime"))
    if created is None:
        raise PermanentError(f"training session {name} has no creation time")
    warnings: list[str] = []
    end = as_utc(detail.get("EndTime"))
    if end is None:
        end = as_utc(detail.get("LastModifiedTime")) or created
        warnings.append("EndTime missing; LastModifiedTime (else CreationTime) used as the session's end")
    reason, reason_warning = clean_text(detail.get("ErrorDetails"), "ErrorDetails", 1024)
    tags = detail.get("Tags")
    return SessionFacts(
        name=name,
        arn=arn,
        account_id=parts[4],
        region=parts[3],
        status=str(detail.get("TrainingSessionStatus")),
        failure_reason=reason,
        creation_time=created,
        end_time=max(end, created),
        detail=detail,
        tags={str(t.get("Key")): str(t.get("Value", "")) for t in tags if isinstance(t, Mapping)}
        if isinstance(tags, list)
        else {},
        warnings=(*warnings, *([reason_warning] if reason_warning else [])),
    )


@dataclass(frozen=True)
class Assessed:
    """A session's estimate classified under every policy (the same for a running pass and the final record)."""

    estimate: CustomizationEstimate
    pretrain: PretrainCompute
    result: Classification
    warnings: tuple[str, ...]


def assess_session(facts: SessionFacts, config: ServiceConfig, warnings: list[str]) -> Assessed:
    estimate = estimate_training_session(facts.detail)
    notes = [*warnings, *facts.warnings, *estimate.warnings(), NO_INSTANCES]
    pretrain, pretrain_warnings = tagged_pretrain(facts.tags, estimate.base.model_id)
    notes += pretrain_warnings
    result = classify(estimate.modification_flops, pretrain.flops, systemic_risk_base=pretrain.systemic_risk,
                      primary_policy=config.primary_policy, approaching_fraction=config.approaching_fraction,
                      warnings=notes)  # fmt: skip
    return Assessed(estimate, pretrain, result, tuple(dict.fromkeys(result.warnings)))


def classify_training_session(request: ClassifyRequest, deps: Dependencies, config: ServiceConfig) -> ClassifyResult:
    """Classify one ended training session and write its record (a no-op when it exists)."""
    source = _source(deps)
    try:
        detail = source.describe_session(request.job_name)
    except JobNotFound:
        return _deleted_before_described(request, deps, config)
    status = str(detail.get("TrainingSessionStatus"))
    if status == "Stopping":
        raise JobNotSettled(f"training session {request.job_name} is Stopping: classified once it has stopped")
    if status not in contract.SESSION_ENDED_STATUSES:
        deps.log.info("session not ended; ignored", extra={"job": request.job_name, "status": status})
        return ClassifyResult("ignored", request.job_name, reason=f"DescribeTrainingSession says {status}")
    return _record(session_facts(detail), request, deps, config, ())


def _record(
    facts: SessionFacts, request: ClassifyRequest, deps: Dependencies, config: ServiceConfig, notes: tuple[str, ...]
) -> ClassifyResult:
    existing = find_job(deps.store, facts.arn)  # an earlier pass may have recorded it under another end date
    key = existing.entry.record_key if existing is not None and existing.entry is not None else facts.record_key

    def build() -> AuditRecord:
        checkpoints = _index_session(facts, key, deps)
        return build_session_record(facts, checkpoints, request, deps, config, notes)

    return record_job(request, deps, config, facts.name, key, build)


def _deleted_before_described(request: ClassifyRequest, deps: Dependencies, config: ServiceConfig) -> ClassifyResult:
    """DeleteTrainingSession took it away: record it from the last running assessment, or fail with why."""
    last = last_assessment(deps.store, request.arn) if request.arn else None
    if last is None:
        raise JobNotFound(
            f"training session {request.job_name} no longer exists and no running assessment of it was stored: its "
            "compute cannot be read (declare it)"
        )
    detail = {**last.detail, "TrainingSessionStatus": "Deleting"}
    note = (
        f"the session was deleted before it could be described: classified on its last running assessment "
        f"({last.assessed_at.isoformat()}); compute after that moment is not known (a declaration is needed)"
    )
    return _record(session_facts(detail), request, deps, config, (note,))


def _source(deps: Dependencies) -> SessionSource:
    if deps.sessions is None:
        raise PermanentError("a training-session event arrived but the classifier has no training-session client")
    return deps.sessions


def _index_session(facts: SessionFacts, key: str, deps: Dependencies) -> list[str]:
    """The session's own index entry and one per checkpoint it published (lineage: later jobs find it)."""
    source = _source(deps)
    checkpoints = source.checkpoints(facts.group_arn, facts.creation_time, facts.end_time) if facts.group_arn else []
    common: dict[str, Any] = {"job_name": facts.name, "job_arn": facts.arn, "account_id": facts.account_id,
                              "region": facts.region, "end_time": facts.end_time, "record_key": key}  # fmt: skip
    entries = [IndexEntry(kind="job", role="job", location=facts.arn, **common)]
    entries += [IndexEntry(kind="model_package", role="model_package", location=arn, **common) for arn in checkpoints]
    for entry in entries:
        deps.store.put_immutable(entry.key(), entry.to_json_bytes())
    return checkpoints


def build_session_record(
    facts: SessionFacts,
    checkpoints: list[str],
    request: ClassifyRequest,
    deps: Dependencies,
    config: ServiceConfig,
    notes: tuple[str, ...] = (),
) -> AuditRecord:
    now = deps.clock()
    warnings = [f"reconciled: {RECONCILED}"] if request.reconciled else []
    crossing = read_crossing(deps.store, facts.arn)
    assessed = assess_session(facts, config, [*warnings, *notes])
    warnings = list(assessed.warnings)
    seconds = max(0.0, (facts.end_time - facts.creation_time).total_seconds())
    ceiling = HardwareCeilingInfo.from_ceiling(hardware_ceiling(INSTANCE_PLACEHOLDER, 1, seconds))
    flops = assessed.estimate.modification_flops
    cloudtrail = captured_or_looked_up(
        deps.store,
        facts.arn,
        lambda: deps.trail.find_launch(contract.CREATE_TRAINING_SESSION, facts.arn, facts.creation_time),
        (contract.CREATE_TRAINING_SESSION, facts.name),
        facts.end_time,
        now,
        config,
        warnings,
    )
    record = AuditRecord(
        record_id=record_id_for(facts.arn),
        recorded_at=now,
        job=JobInfo(
            name=facts.name,
            arn=facts.arn,
            account_id=facts.account_id,
            region=facts.region,
            status=RECORD_STATUS.get(facts.status, "Stopped"),
            failure_reason=facts.failure_reason,
            creation_time=facts.creation_time,
            end_time=facts.end_time,
            instance_type=INSTANCE_PLACEHOLDER,
            instance_count=1,
            training_seconds=seconds,
            training_seconds_source="CreationTime..EndTime (DescribeTrainingSession)",
        ),  # fmt: skip
        base_model=base_model_info(assessed.pretrain),
        flops=estimated_flops(assessed.estimate, ceiling),
        classifications=[PolicyClassification.from_result(r) for r in assessed.result.results],
        primary_policy=assessed.result.primary_policy,
        outcome=assessed.result.primary.outcome.value,
        cloudtrail=cloudtrail,
        eventbridge_event_id=request.eventbridge_event_id,
        lineage=Lineage(own_flops=flops, cumulative_flops=flops, model_package_group_arn=facts.group_arn),
        warnings=list(dict.fromkeys(warnings)),
        customization=customization_block(assessed.estimate),
        session=_session_block(facts, checkpoints, deps, crossing),
    )
    blocks = BlockInputs(established_outside_eu=config.established_outside_eu, energy=config.energy,
                         metered_crossed_at=crossing.crossed_at if crossing else None)  # fmt: skip
    return with_energy_and_obligations(record, blocks)


def _session_block(
    facts: SessionFacts, checkpoints: list[str], deps: Dependencies, crossing: SessionAssessment | None
) -> SessionInfo:
    usage = token_usage(facts.detail)
    lora = facts.detail.get("LoraConfig")
    lora = lora if isinstance(lora, Mapping) else {}
    model = facts.detail.get("ModelConfig")
    model = model if isinstance(model, Mapping) else {}
    try:
        passes = sum(1 for item in deps.store.list_keys(session_index_prefix(facts.arn))
                     if str(item.get("Key", "")).endswith("Z.json"))  # fmt: skip
    except PermanentError:
        passes = 0
    try:
        return SessionInfo(
            status=facts.status,
            base_model_arn=clean_text(model.get("BaseModelArn"), "BaseModelArn", 512)[0],
            lora_rank=lora.get("Rank") if isinstance(lora.get("Rank"), int) else None,
            lora_alpha=lora.get("Alpha") if isinstance(lora.get("Alpha"), int) else None,
            training_tokens=usage.training,
            prefill_tokens=usage.prefill,
            sample_tokens=usage.sample,
            model_package_group_arn=facts.group_arn,
            checkpoints=checkpoints,
            running_assessments=passes,
            crossed_while_running_at=crossing.crossed_at if crossing else None,
        )
    except ValidationError as err:
        raise PermanentError(f"training session {facts.name}: unusable fields ({err.error_count()})") from None
