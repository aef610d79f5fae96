"""Announcing a record once it is written: the "FLOPs Classification Recorded" EventBridge event, then the SNS
alert when the job approaches or exceeds a threshold. Each step leaves an immutable marker
(``flopsmeter.audit.keys.notification_key``), so a retry repeats only the step that failed and a duplicate
delivery announces a record that an earlier attempt wrote but never announced."""

from __future__ import annotations

import json

from flopsmeter.audit.keys import notification_key
from flopsmeter.audit.record import AuditRecord
from flopsmeter.domain.classification import Outcome
from flopsmeter.domain.deadlines import brussels_text, due_text
from flopsmeter.errors import AuditStoreError
from flopsmeter.service.customization import declaration_needed
from flopsmeter.service.dependencies import Dependencies, ServiceConfig
from flopsmeter.service.lineage_record import lineage_alert_lines
from flopsmeter.service.recorded_event import ClassificationRecordedDetail

ALERTING_OUTCOMES = (Outcome.APPROACHING.value, Outcome.EXCEEDS.value)
DECLARATION_REQUEST = (
    "Declaration needed: this job was estimated on a bound, not a count (its token count, or its base model's size, "
    "is not exposed by the service). Declare the job's tokens or FLOPs (tag flopsmeter:declared-flops) and record "
    "why; the record's customization.estimate states what was assumed."
)


def worst_outcome(record: AuditRecord) -> str:
    """The most severe outcome across every policy the record was classified under."""
    severity = {o.value: o.severity for o in Outcome}
    return max((c.outcome for c in record.classifications), key=lambda o: severity[o])


def announced(deps: Dependencies, key: str) -> bool:
    """Has every announcement step of the record at ``key`` gone out?"""
    return deps.store.exists(notification_key(key))


def announce(record: AuditRecord, key: str, deps: Dependencies, config: ServiceConfig, *, fresh: bool = True) -> None:
    """EventBridge event, then the SNS alert when approaching/exceeding, each step marked once done.

    ``fresh``: the record was just written, so no step can have run yet (no marker is looked up).
    """
    primary = next(c for c in record.classifications if c.policy == record.primary_policy)
    worst = worst_outcome(record)
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
        notification_due_at=record.obligations.notification_due_at if record.obligations else None,
        energy_kwh=record.energy.kwh if record.energy else None,
    ).model_dump(mode="json")
    event_marker = notification_key(key, step="event")
    if fresh or not deps.store.exists(event_marker):
        deps.publisher.recorded(detail, resources=[record.job.arn])
        _mark(deps, event_marker, record)
    declare = declaration_needed(record)  # an estimate on a bound: a person must declare (issue 16/17)
    if config.alerts_enabled and (worst in ALERTING_OUTCOMES or declare):
        deps.publisher.alert(
            alert_subject(record, worst, primary.ratio),
            alert_message(record, detail),
            {
                "outcome": worst,
                "job": record.job.name,
                "policy": record.primary_policy,
                "declaration_needed": str(declare).lower(),
            },  # fmt: skip
        )
    _mark(deps, notification_key(key), record)


def _mark(deps: Dependencies, marker: str, record: AuditRecord) -> None:
    body = json.dumps({"record_id": record.record_id, "sha256": record.sha256, "at": deps.clock().isoformat()}).encode()
    try:
        deps.store.put_immutable(marker, body)
    except AuditStoreError as err:  # the step went out; a missing marker only risks repeating it on a retry
        deps.log.warning("notification marker not written", extra={"key": marker, "error": str(err)})


def alert_subject(record: AuditRecord, worst: str, ratio: float) -> str:
    due = record.obligations.notification_due_at if record.obligations else None
    if due is not None:  # the deadline first: a long job name must not cut it off
        return f"FLOPs Meter: notify the Commission by {brussels_text(due)} - {record.job.name} {worst}"[:100]
    lineage = ", lineage incomplete" if lineage_alert_lines(record) else ""
    lineage += ", re-assessed" if record.addendum is not None else ""
    declare = "; declaration needed" if declaration_needed(record) else ""
    share = f"{ratio:.0%} of the {record.primary_policy} threshold{declare}"
    return f"FLOPs Meter: {record.job.name} {worst}{lineage} ({share})"[:100]


def alert_message(record: AuditRecord, detail: dict[str, object]) -> str:
    lines = [
        f"Training job {record.job.name} ({record.job.status}) is '{detail['worst_outcome']}' a compute threshold "
        "for modifiers of general-purpose AI models (EU AI Act).",
        f"Cumulative FLOPs {record.lineage.cumulative_flops:.2e} ({record.flops.method}); "
        f"primary policy {record.primary_policy}: threshold {detail['threshold']:.2e}, outcome {record.outcome}.",
        *(
            f"{c.policy}: {c.outcome} (threshold {c.threshold:.2e}, ratio {c.ratio:.3f})"
            for c in record.classifications
        ),
        *lineage_alert_lines(record),
        *addendum_lines(record),
        *obligation_lines(record),
        f"Audit record: s3://{detail['bucket']}/{detail['record_key']} (sha256 {record.sha256})",
        *([DECLARATION_REQUEST] if declaration_needed(record) else []),
    ]
    return "\n".join(lines) + "\n\n" + json.dumps(detail, sort_keys=True)


def addendum_lines(record: AuditRecord) -> list[str]:
    """An addendum (issue 23): why the job was re-assessed, and the original record it supersedes the figure of."""
    if record.addendum is None:
        return []
    return [
        f"RE-ASSESSED: {record.addendum.reason}.",
        f"Original record: {record.addendum.of_record_key} (sha256 {record.addendum.of_record_sha256}).",
    ]


def obligation_lines(record: AuditRecord) -> list[str]:
    """What a crossing triggers and by when (issue 16), and the job's energy, for the alert's text."""
    lines = []
    o = record.obligations
    if o is not None and o.triggered and o.crossed_at is not None:
        lines.append(
            f"Crossed on {o.crossed_at:%Y-%m-%d %H:%M} UTC in {o.crossed_in_job} ({o.crossed_at_basis}): the modifier "
            "becomes the provider of the modified model (AI Act Art. 53, limited to the modification)."
        )
        if o.notification_due_at is not None:
            lines.append(
                f"NOTIFICATION DUE: notify the Commission by {due_text(o.notification_due_at)} "
                "(AI Act Art. 52(1): within two weeks of the crossing; Reg. 1182/71, Brussels time)."
            )
        lines += [
            f"- {i.summary} ({i.article}){' - for legal review' if i.status == 'review' else ''}" for i in o.items
        ]
    if record.energy is not None:
        kwh = "unknown" if record.energy.kwh is None else f"{record.energy.kwh:.2g} kWh"
        lines.append(f"Estimated energy of the job: {kwh} ({record.energy.method.replace('_', ' ')}).")
    return lines
