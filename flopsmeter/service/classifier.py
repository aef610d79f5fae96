"""The classifier service: one terminal training job in, one immutable audit record out (or a reason why not).

``classify_and_record`` gathers the facts (DescribeTrainingJob is authoritative over the event; tags; the
meter's CloudWatch metrics; the hardware ceiling; CloudTrail's CreateTrainingJob; the parent's record for
lineage), classifies the cumulative FLOPs under every policy with the pure domain code, writes the record once
(``If-None-Match: *`` + Object Lock) and then announces it (EventBridge, and SNS when approaching or exceeding).

Everything it talks to comes in through ``Dependencies``, so tests hand it fakes. It raises only
``flopsmeter.service.errors`` types: ``TransientError`` (retry later) or ``PermanentError`` (dead-letter).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from flopsmeter import contract
from flopsmeter.audit.keys import RECORDS_PREFIX
from flopsmeter.audit.record import (
    AuditRecord,
    BaseModelInfo,
    CloudTrailRef,
    FlopsInfo,
    HardwareCeilingInfo,
    JobInfo,
    Lineage,
    PolicyClassification,
    record_id_for,
    utcnow,
)
from flopsmeter.audit.store import AuditStoreError, TransientStoreError
from flopsmeter.domain.classification import Classification, Outcome, classify
from flopsmeter.domain.hardware import HardwareCeiling
from flopsmeter.domain.numbers import parse_flops
from flopsmeter.domain.pretrain import PretrainCompute, resolve_pretrain_compute
from flopsmeter.domain.thresholds import DEFAULT_APPROACHING_FRACTION, DEFAULT_PRIMARY_POLICY
from flopsmeter.service.errors import (
    CloudTrailPending,
    PermanentAuditWriteError,
    PermanentError,
    TransientAuditWriteError,
)
from flopsmeter.service.events import TERMINAL_STATUSES, ClassificationRecordedDetail
from flopsmeter.service.facts import JobFacts, clean_text, facts_from_description, job_ceiling, parse_bool
from flopsmeter.service.lineage import ParentCompute, resolve_parent
from flopsmeter.service.ports import (
    JobSource,
    LogSink,
    MeteredFigures,
    MeterSource,
    MetricSink,
    Publisher,
    RecordStore,
    TrailHit,
    TrailSource,
)

# EMF business metrics (counts).
JOBS_CLASSIFIED = "JobsClassified"
THRESHOLD_EXCEEDED = "ThresholdExceeded"
THRESHOLD_APPROACHING = "ThresholdApproaching"
THRESHOLD_RATIO = "ThresholdRatio"  # job FLOPs / threshold under the strictest policy (dashboard: Maximum)
DUPLICATE_DELIVERY = "DuplicateDelivery"
AUDIT_WRITE_FAILED = "AuditWriteFailed"
CLOUDTRAIL_NOT_FOUND = "CloudTrailNotFound"

NOTIFICATIONS_PREFIX = "notifications/v1/"  # one immutable marker per record once its event/alert went out
METRICS_WINDOW_BEFORE = timedelta(minutes=5)
METRICS_WINDOW_AFTER = timedelta(minutes=15)  # the meter's last datapoint may land after the job's end


@dataclass(frozen=True)
class ServiceConfig:
    primary_policy: str = DEFAULT_PRIMARY_POLICY
    approaching_fraction: float = DEFAULT_APPROACHING_FRACTION
    cloudtrail_max_wait_seconds: float = 3600.0
    parent_max_wait_seconds: float = 3600.0
    alerts_enabled: bool = True


@dataclass
class Dependencies:
    jobs: JobSource
    meter: MeterSource
    trail: TrailSource
    store: RecordStore
    publisher: Publisher
    metrics: MetricSink
    log: LogSink
    clock: Callable[[], datetime] = utcnow


@dataclass(frozen=True)
class ClassifyRequest:
    job_name: str
    eventbridge_event_id: str | None = None
    reconciled: bool = False


@dataclass(frozen=True)
class ClassifyResult:
    status: Literal["recorded", "duplicate", "ignored"]
    job_name: str
    key: str | None = None
    record: AuditRecord | None = None
    reason: str = ""
    notified: bool = False


def notification_marker_key(record_key: str, step: str | None = None) -> str:
    """Marker of a record's announcement: every step done (no ``step``), or one step (``"event"``)."""
    marker = NOTIFICATIONS_PREFIX + record_key.removeprefix(RECORDS_PREFIX)
    return marker if step is None else marker.removesuffix(".json") + f".{step}.json"


def classify_and_record(request: ClassifyRequest, deps: Dependencies, config: ServiceConfig) -> ClassifyResult:
    """Classify one training job and write its audit record; a record already there makes this a no-op."""
    description = deps.jobs.describe(request.job_name)
    status = str(description.get("TrainingJobStatus"))
    if status not in TERMINAL_STATUSES:
        reason = f"DescribeTrainingJob says {status}: not terminal yet; a later state change will classify it"
        deps.log.info("job not terminal; ignored", extra={"job": request.job_name, "status": status})
        return ClassifyResult("ignored", request.job_name, reason=reason)
    facts = facts_from_description(description, {})
    key = facts.record_key
    if _exists(deps, key):
        return _duplicate(request, deps, key, config)
    facts = facts_from_description(description, deps.jobs.tags(facts.arn))
    now = deps.clock()
    record = build_record(facts, request, deps, config, now)
    try:
        put = deps.store.put_record(key, record)
    except TransientStoreError as err:
        deps.metrics.add_metric(AUDIT_WRITE_FAILED, "Count", 1)
        raise TransientAuditWriteError(f"audit write of {key} failed, will retry: {err}") from err
    except AuditStoreError as err:
        deps.metrics.add_metric(AUDIT_WRITE_FAILED, "Count", 1)
        raise PermanentAuditWriteError(f"audit write of {key} refused: {err}") from err
    if not put.written:  # a concurrent delivery won the race between our check and our write
        return _duplicate(request, deps, key, config)
    sealed = record if record.sha256 else record.sealed()
    worst = _worst(sealed)
    deps.metrics.add_metric(JOBS_CLASSIFIED, "Count", 1)
    deps.metrics.add_metric(THRESHOLD_RATIO, "None", max(c.ratio for c in sealed.classifications))
    if worst == Outcome.EXCEEDS.value:
        deps.metrics.add_metric(THRESHOLD_EXCEEDED, "Count", 1)
    elif worst == Outcome.APPROACHING.value:
        deps.metrics.add_metric(THRESHOLD_APPROACHING, "Count", 1)
    if sealed.cloudtrail.status == "not_found":
        deps.metrics.add_metric(CLOUDTRAIL_NOT_FOUND, "Count", 1)
    deps.log.info(
        "job classified",
        extra={
            "job": facts.name,
            "outcome": sealed.outcome,
            "worst_outcome": worst,
            "method": sealed.flops.method,
            "cumulative_flops": sealed.lineage.cumulative_flops,
            "key": key,
            "version_id": put.version_id,
            "reconciled": request.reconciled,
        },
    )
    _notify(sealed, key, deps, config)
    return ClassifyResult("recorded", facts.name, key, sealed, "record written", notified=True)


def _exists(deps: Dependencies, key: str) -> bool:
    try:
        return deps.store.exists(key)
    except TransientStoreError as err:
        raise TransientAuditWriteError(f"checking {key}: {err}") from err
    except AuditStoreError as err:
        raise PermanentAuditWriteError(f"checking {key}: {err}") from err


def _duplicate(request: ClassifyRequest, deps: Dependencies, key: str, config: ServiceConfig) -> ClassifyResult:
    """A record exists: nothing is written. Announce it only if an earlier attempt wrote it but never announced."""
    deps.metrics.add_metric(DUPLICATE_DELIVERY, "Count", 1)
    deps.log.info("duplicate delivery; record already exists", extra={"job": request.job_name, "key": key})
    marker = notification_marker_key(key)
    try:
        if deps.store.exists(marker):
            return ClassifyResult("duplicate", request.job_name, key, reason="record already exists")
        existing = deps.store.get_record(key)
    except TransientStoreError as err:
        raise TransientAuditWriteError(f"reading {key}: {err}") from err
    except (AuditStoreError, ValueError) as err:
        deps.log.warning("existing record unreadable; not re-announced", extra={"key": key, "error": str(err)})
        return ClassifyResult("duplicate", request.job_name, key, reason=f"record exists but is unreadable: {err}")
    deps.log.warning("record exists but was never announced; announcing now", extra={"key": key})
    _notify(existing, key, deps, config, fresh=False)
    return ClassifyResult(
        "duplicate", request.job_name, key, existing, "record already exists; announced now", notified=True
    )


def _worst(record: AuditRecord) -> str:
    severity = {o.value: o.severity for o in Outcome}
    return max((c.outcome for c in record.classifications), key=lambda o: severity[o])


def _notify(record: AuditRecord, key: str, deps: Dependencies, config: ServiceConfig, *, fresh: bool = True) -> None:
    """EventBridge event, then the SNS alert when approaching/exceeding, each step marked once done.

    The step markers make a retry (after a throttled publish) repeat only the step that failed. ``fresh``: the
    record was just written, so no step can have run yet.
    """
    primary = next(c for c in record.classifications if c.policy == record.primary_policy)
    worst = _worst(record)
    detail = ClassificationRecordedDetail(
        record_id=record.record_id,
        record_key=key,
        bucket=deps.store.bucket,
        sha256=record.sha256,
        job_name=record.job.name,
        job_arn=record.job.arn,
        job_status=record.job.status,
        primary_policy=record.primary_policy,
        outcome=record.outcome,
        worst_outcome=worst,
        method=record.flops.method,
        classified_flops=record.flops.classified_flops,
        cumulative_flops=record.lineage.cumulative_flops,
        threshold=primary.threshold,
        ratio=primary.ratio,
        eventbridge_event_id=record.eventbridge_event_id,
        reconciled=any(w.startswith("reconciled:") for w in record.warnings),
    ).model_dump(mode="json")
    event_marker = notification_marker_key(key, step="event")
    if fresh or not _exists(deps, event_marker):
        deps.publisher.recorded(detail, resources=[record.job.arn])
        _mark(deps, event_marker, record)
    if config.alerts_enabled and worst in (Outcome.APPROACHING.value, Outcome.EXCEEDS.value):
        deps.publisher.alert(
            _alert_subject(record, worst, primary.ratio),
            _alert_message(record, detail),
            {"outcome": worst, "job": record.job.name, "policy": record.primary_policy},
        )
    _mark(deps, notification_marker_key(key), record)


def _mark(deps: Dependencies, marker: str, record: AuditRecord) -> None:
    body = json.dumps({"record_id": record.record_id, "sha256": record.sha256, "at": deps.clock().isoformat()}).encode()
    try:
        deps.store.put_immutable(marker, body)
    except AuditStoreError as err:  # the step went out; a missing marker only risks repeating it on a retry
        deps.log.warning("notification marker not written", extra={"key": marker, "error": str(err)})


def _alert_subject(record: AuditRecord, worst: str, ratio: float) -> str:
    return f"FLOPs Meter: {record.job.name} {worst} ({ratio:.0%} of the {record.primary_policy} threshold)"[:100]


def _alert_message(record: AuditRecord, detail: dict[str, object]) -> str:
    lines = [
        f"Training job {record.job.name} ({record.job.status}) is '{detail['worst_outcome']}' a compute threshold "
        "for modifiers of general-purpose AI models (EU AI Act).",
        f"Cumulative FLOPs {record.lineage.cumulative_flops:.2e} ({record.flops.method}); "
        f"primary policy {record.primary_policy}: threshold {detail['threshold']:.2e}, outcome {record.outcome}.",
        *(
            f"{c.policy}: {c.outcome} (threshold {c.threshold:.2e}, ratio {c.ratio:.3f})"
            for c in record.classifications
        ),
        f"Audit record: s3://{detail['bucket']}/{detail['record_key']} (sha256 {record.sha256})",
    ]
    return "\n".join(lines) + "\n\n" + json.dumps(detail, sort_keys=True)


# --- building the record -------------------------------------------------------------------------------------


def build_record(
    facts: JobFacts, request: ClassifyRequest, deps: Dependencies, config: ServiceConfig, now: datetime
) -> AuditRecord:
    warnings: list[str] = list(facts.warnings)
    if request.reconciled:
        warnings.insert(
            0, "reconciled: no state-change event was processed for this job; the scheduled reconciler classified it"
        )
    pretrain, pretrain_warnings = _pretrain(facts)
    warnings += pretrain_warnings
    ceiling, ceiling_warnings = job_ceiling(facts)
    warnings += ceiling_warnings
    start = facts.start_time or facts.creation_time or facts.end_time
    figures = deps.meter.job_metrics(facts.name, start - METRICS_WINDOW_BEFORE, facts.end_time + METRICS_WINDOW_AFTER)
    flops_info, own_flops = _flops(facts, figures, ceiling, warnings)
    parent = resolve_parent(
        facts, jobs=deps.jobs, store=deps.store, now=now, max_wait_seconds=config.parent_max_wait_seconds
    )
    warnings += parent.warnings
    cloudtrail = _cloudtrail(facts, deps, config, now, warnings)
    cumulative = parent.cumulative_flops + own_flops
    result = classify(
        cumulative,
        pretrain.flops,
        systemic_risk_base=pretrain.systemic_risk,
        primary_policy=config.primary_policy,
        approaching_fraction=config.approaching_fraction,
        warnings=warnings,
    )
    return AuditRecord(
        record_id=record_id_for(facts.arn),
        recorded_at=now,
        job=_job_info(facts, ceiling),
        base_model=BaseModelInfo(
            model_id=pretrain.base_model_id,
            pretrain_flops=pretrain.flops,
            source=pretrain.source.value,
            basis=pretrain.basis,
            systemic_risk=pretrain.systemic_risk,
            raw_value=clean_text(pretrain.raw, "PRETRAIN_FLOPS", 64)[0],
        ),
        flops=flops_info,
        classifications=_classifications(result),
        primary_policy=result.primary_policy,
        outcome=result.primary.outcome.value,
        cloudtrail=cloudtrail,
        eventbridge_event_id=request.eventbridge_event_id,
        lineage=_lineage(parent, own_flops, cumulative),
        warnings=_dedupe(result.warnings),
    ).sealed()


def _pretrain(facts: JobFacts) -> tuple[PretrainCompute, list[str]]:
    warnings: list[str] = []
    env_flops, tag_flops = facts.setting(contract.ENV_PRETRAIN_FLOPS, contract.TAG_PRETRAIN_FLOPS)
    env_model, tag_model = facts.setting(contract.ENV_BASE_MODEL, contract.TAG_BASE_MODEL)
    model_id, model_warning = clean_text(env_model if env_model is not None else tag_model, "base model id")
    env_sys, tag_sys = facts.setting(contract.ENV_SYSTEMIC_RISK_BASE, contract.TAG_SYSTEMIC_RISK_BASE)
    systemic, systemic_warning = parse_bool(env_sys if env_sys is not None else tag_sys, "systemic-risk flag")
    warnings += [w for w in (model_warning, systemic_warning) if w]
    pretrain = resolve_pretrain_compute(
        environment_value=env_flops, tag_value=tag_flops, base_model_id=model_id, systemic_risk_base=systemic
    )
    if env_flops is not None and tag_flops is not None and env_flops.strip() != tag_flops.strip():
        warnings.append("PRETRAIN_FLOPS differs between the job environment and its tag; the environment is used")
    return pretrain, [*warnings, *pretrain.warnings]


def _sane(value: float | None, what: str, warnings: list[str]) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or math.isnan(value)
        or math.isinf(value)
        or value < 0
    ):
        warnings.append(f"metered {what} {value!r} is not a finite number >= 0; ignored")
        return None
    return float(value)


def _flops(
    facts: JobFacts, figures: MeteredFigures, ceiling: HardwareCeiling, warnings: list[str]
) -> tuple[FlopsInfo, float]:
    metered = _sane(figures.cumulative_flops, contract.METRIC_CUMULATIVE_FLOPS, warnings)
    if figures.restarts:
        warnings.append(
            f"the meter's cumulative FLOPs fell {figures.restarts} time(s) during the job (training restarted from "
            "zero without its saved totals): the runs' peaks were added"
        )
    if figures.cumulative_flops is not None and metered is None:
        warnings.append("the job is classified on its hardware ceiling because its metered FLOPs are unusable")
    tokens = _sane(figures.tokens, contract.METRIC_CUMULATIVE_TOKENS, warnings)
    non_padding = _sane(figures.non_padding_tokens, contract.METRIC_CUMULATIVE_NON_PADDING_TOKENS, warnings)
    recompute = _sane(figures.recompute_flops, contract.METRIC_RECOMPUTE_FLOPS, warnings)
    env_declared, tag_declared = facts.setting(contract.ENV_DECLARED_FLOPS, contract.TAG_DECLARED_FLOPS)
    declared_raw = env_declared if env_declared is not None else tag_declared
    declared = parse_flops(declared_raw, field="declared FLOPs")
    if declared.warning:
        warnings.append(declared.warning)
    incomplete = _meter_incomplete(figures.meter_incomplete, metered, ceiling, warnings)
    if metered is not None and not (incomplete and metered <= ceiling.flops):
        method, own, uncertainty = (
            "metered",
            metered,
            (
                "metered by the flopsmeter callback: architecture-based forward+backward matmul FLOPs including "
                "attention, frozen-parameter aware; the hardware ceiling is an upper bound"
            ),
        )
        if metered > ceiling.flops:
            warnings.append(
                f"metered FLOPs {metered:.2e} exceed the hardware ceiling {ceiling.flops:.2e}: check the "
                "meter or the accelerator catalog (the larger, metered figure is used)"
            )
    else:
        method, own, uncertainty = (
            "hardware_ceiling",
            ceiling.flops,
            (
                "upper bound: chips x training seconds x dense peak FLOP/s at utilisation 1.0; the job's real compute "
                "is lower"
            ),
        )
    if declared.value is not None and declared.value > own:
        warnings.append(
            f"declared FLOPs {declared.value:.2e} exceed the {method} figure {own:.2e}; the declared "
            "value is recorded, not used for classification"
        )
    info = FlopsInfo(
        method=method,
        classified_flops=own,
        metered=metered,
        hardware_ceiling=HardwareCeilingInfo(
            flops=ceiling.flops,
            bf16_flops=ceiling.bf16_flops,
            accelerator=ceiling.accelerator,
            chips_per_instance=ceiling.chips_per_instance,
            instance_count=ceiling.instance_count,
            seconds=ceiling.seconds,
            peak_flops_per_chip=ceiling.peak_flops_per_chip,
            precision=ceiling.precision,
            known_instance=ceiling.known_instance,
            peak_source=ceiling.peak_source,
        ),
        declared=declared.value,
        tokens=None if tokens is None else int(tokens),
        non_padding_tokens=None if non_padding is None else int(non_padding),
        recompute_flops=recompute,
        uncertainty=uncertainty,
    )
    return info, own


def _meter_incomplete(
    value: float | None, metered: float | None, ceiling: HardwareCeiling, warnings: list[str]
) -> bool:
    """Did the job's meter report (``MeterIncomplete``, Maximum over the window) that its totals miss part of the job?

    None or 0 means no; any other value (1, NaN, a negative) means yes: a doubtful flag never makes the
    classification less conservative. An incomplete metered figure is kept in the record but the job is classified
    on its hardware ceiling (or on the metered figure, if that is larger).
    """
    if value is None or value == 0:
        return False
    if metered is None:
        warnings.append(
            f"the job's meter reported that it could not meter the job ({contract.METRIC_METER_INCOMPLETE}="
            f"{value!r}) and sent no FLOPs; classified on the hardware ceiling"
        )
    else:
        warnings.append(
            f"the job's meter reported incomplete totals ({contract.METRIC_METER_INCOMPLETE}={value!r}: e.g. resumed "
            f"without saved totals, or interrupted across ranks); its metered figure {metered:.2e} (which may "
            f"include an extrapolated estimate) is recorded but not trusted: classified on the "
            + ("hardware ceiling" if metered <= ceiling.flops else "metered figure, which exceeds the hardware ceiling")
        )
    return True


def _cloudtrail(
    facts: JobFacts, deps: Dependencies, config: ServiceConfig, now: datetime, warnings: list[str]
) -> CloudTrailRef:
    created = facts.creation_time or facts.start_time or facts.end_time
    try:
        hit: TrailHit | None = deps.trail.find_create_training_job(facts.name, created)
    except PermanentError as err:  # e.g. AccessDenied: the record is still written, saying why
        warnings.append(f"CloudTrail lookup failed: {err}")
        return CloudTrailRef(status="not_found", reason=f"lookup failed: {str(err)[:300]}")
    if hit is not None:
        return CloudTrailRef(
            status="found",
            event_id=hit.event_id,
            event_time=hit.event_time,
            principal_arn=hit.principal_arn,
            source_ip=hit.source_ip,
            user_agent=hit.user_agent,
        )
    waited = (now - facts.end_time).total_seconds()
    if waited < config.cloudtrail_max_wait_seconds:
        raise CloudTrailPending(
            f"CreateTrainingJob for {facts.name} not in CloudTrail yet "
            f"({waited:.0f}s after the job's end; waiting up to {config.cloudtrail_max_wait_seconds:.0f}s)"
        )
    reason = (
        f"no CreateTrainingJob event for {facts.name} in CloudTrail {waited:.0f}s after the job ended "
        f"(waited up to {config.cloudtrail_max_wait_seconds:.0f}s)"
    )
    warnings.append(f"CloudTrail: {reason}")
    return CloudTrailRef(status="not_found", reason=reason)


def _job_info(facts: JobFacts, ceiling: HardwareCeiling) -> JobInfo:
    return JobInfo(
        name=facts.name,
        arn=facts.arn,
        account_id=facts.account_id,
        region=facts.region,
        status=facts.status,  # checked terminal by the caller
        failure_reason=facts.failure_reason,
        creation_time=facts.creation_time,
        start_time=facts.start_time,
        end_time=facts.end_time,
        instance_type=ceiling.instance_type,
        instance_count=ceiling.instance_count,
        billable_seconds=facts.billable_seconds,
        training_seconds=facts.training_seconds,
        training_seconds_source=facts.training_seconds_source,
    )


def _classifications(result: Classification) -> list[PolicyClassification]:
    return [PolicyClassification.from_result(r) for r in result.results]


def _lineage(parent: ParentCompute, own: float, cumulative: float) -> Lineage:
    return Lineage(
        parent_job=parent.parent_job,
        parent_record_key=parent.parent_record_key,
        own_flops=own,
        parent_cumulative_flops=parent.cumulative_flops,
        cumulative_flops=cumulative,
        chain=parent.chain,
    )


def _dedupe(items: tuple[str, ...] | list[str]) -> list[str]:
    return list(dict.fromkeys(items))
