"""The scheduled pass over training sessions (issue 26 item 1), run by the reconciler.

A session can run for days with no event. Each pass:

* re-assesses every running (or blocked) session from DescribeTrainingSession: its estimate so far is stored
  (``flopsmeter.service.session_assessments``); the first pass that finds it over a threshold writes the crossing
  marker once and raises the crossing alert with the Art. 52(1) due date, before the session ends. The crossing
  moment is the earliest one the passes allow: the last pass that saw it below (else the session's creation), so
  the due date is never late;
* classifies every session that ended (Stopped, Failed, Expired, Deleting) in the lookback window and has no
  record yet, through ``classify_training_session`` (Failed and Expired sessions end without any call).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flopsmeter import contract
from flopsmeter.audit.keys import session_assessment_key, session_crossing_key
from flopsmeter.domain.classification import Outcome
from flopsmeter.domain.obligations import Crossing, lowest_exceeded, obligations_on_crossing
from flopsmeter.errors import PermanentError, TransientError
from flopsmeter.service.dependencies import ClassifyRequest, Dependencies, ServiceConfig
from flopsmeter.service.lineage_index import find_job
from flopsmeter.service.session_assessments import (
    SessionAssessment,
    last_assessment,
    read_crossing,
    write_assessment,
)
from flopsmeter.service.sessions import Assessed, SessionFacts, assess_session, classify_training_session, session_facts


@dataclass
class SessionWatchReport:
    assessed: list[str] = field(default_factory=list)
    crossed: list[str] = field(default_factory=list)  # crossing markers written by this pass (alerts raised)
    recorded: list[str] = field(default_factory=list)
    already_recorded: int = 0
    deferred: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"assessed": self.assessed, "crossed": self.crossed, "recorded": self.recorded,
                "already_recorded": self.already_recorded, "deferred": self.deferred,
                "failed": self.failed}  # fmt: skip


def watch_sessions(
    deps: Dependencies, config: ServiceConfig, *, lookback_hours: float, now: datetime | None = None
) -> SessionWatchReport:
    report = SessionWatchReport()
    source = deps.sessions
    if source is None:
        return report
    now = now or deps.clock()
    for summary in source.sessions(contract.SESSION_ACTIVE_STATUSES):
        _guarded(summary, report, deps, lambda name: _assess_running(name, deps, config, now, report))
    for summary in source.sessions(contract.SESSION_ENDED_STATUSES, now - timedelta(hours=lookback_hours)):
        _guarded(summary, report, deps, lambda name, s=summary: _classify_ended(name, s, deps, config, report))
    return report


def _guarded(summary: Mapping[str, Any], report: SessionWatchReport, deps: Dependencies, step: Any) -> None:
    name = str(summary.get("TrainingSessionArn", "")).rsplit("/", 1)[-1]
    try:
        step(name)
    except TransientError as err:
        report.deferred[name] = str(err)[:500]
        deps.log.warning("session pass deferred", extra={"job": name, "reason": str(err)[:500]})
    except PermanentError as err:
        report.failed[name] = str(err)[:500]
        deps.log.error("session pass failed", extra={"job": name, "reason": str(err)[:500]})


def _classify_ended(
    name: str, summary: Mapping[str, Any], deps: Dependencies, config: ServiceConfig, report: SessionWatchReport
) -> None:
    arn = str(summary.get("TrainingSessionArn", ""))
    if find_job(deps.store, arn) is not None:
        report.already_recorded += 1
        return
    result = classify_training_session(ClassifyRequest(name, None, reconciled=True, arn=arn), deps, config)
    if result.status == "recorded":
        report.recorded.append(name)
        deps.metrics.add_metric(contract.ServiceMetric.JOBS_RECONCILED, "Count", 1)
    elif result.status == "duplicate":
        report.already_recorded += 1


def _assess_running(
    name: str, deps: Dependencies, config: ServiceConfig, now: datetime, report: SessionWatchReport
) -> None:
    assert deps.sessions is not None
    detail = deps.sessions.describe_session(name)
    if str(detail.get("TrainingSessionStatus")) not in contract.SESSION_ACTIVE_STATUSES:
        return  # it ended between the listing and now: the ended pass (or its call) classifies it
    facts = session_facts(detail)
    assessed = assess_session(facts, config, [])
    previous = last_assessment(deps.store, facts.arn)
    lowest = lowest_exceeded(assessed.result.results)
    worst = max((r.outcome for r in assessed.result.results), key=lambda o: o.severity).value
    seen = SessionAssessment(
        session_arn=facts.arn, session_name=facts.name, assessed_at=now, status=facts.status,
        flops=assessed.estimate.modification_flops, worst_outcome=worst, exceeded=lowest is not None,
        detail=dict(detail),
    )  # fmt: skip
    write_assessment(deps.store, session_assessment_key(facts.arn, now), seen)
    deps.metrics.add_metric(contract.ServiceMetric.SESSIONS_ASSESSED, "Count", 1)
    report.assessed.append(name)
    if lowest is None or read_crossing(deps.store, facts.arn) is not None:
        return
    marker = crossing_marker(seen, facts, assessed, previous, lowest, config)
    if write_assessment(deps.store, session_crossing_key(facts.arn), marker):
        report.crossed.append(name)
        deps.metrics.add_metric(contract.ServiceMetric.SESSION_CROSSED_WHILE_RUNNING, "Count", 1)
        deps.log.warning("training session crossed a threshold while running", extra={"job": name})
        if config.alerts_enabled:
            deps.publisher.alert(*crossing_alert(marker, assessed))


def crossing_marker(
    seen: SessionAssessment,
    facts: SessionFacts,
    assessed: Assessed,
    previous: SessionAssessment | None,
    lowest: tuple[float, tuple[str, ...]],
    config: ServiceConfig,
) -> SessionAssessment:
    """The crossing at the earliest moment the passes allow (the last pass below it, else the session's start)."""
    if previous is not None and not previous.exceeded:
        at, basis = previous.assessed_at, "the last scheduled pass that saw the session below the threshold"
    else:
        at, basis = facts.creation_time, "the session's creation (no earlier pass saw it below the threshold)"
    threshold, policies = lowest
    crossing = Crossing(at, f"training session re-assessed while running; earliest moment: {basis}", facts.name,
                        threshold, policies)  # fmt: skip
    obligations = obligations_on_crossing(
        crossing,
        systemic_risk_base=assessed.pretrain.systemic_risk,
        established_outside_eu=config.established_outside_eu,
        base_pretrain_flops=assessed.pretrain.flops,
        cumulative_flops=seen.flops,
    )
    update = {"crossed_at": at, "crossed_at_basis": crossing.basis, "threshold": threshold,
              "policies": list(policies), "notification_due_at": obligations.notification_due_at}  # fmt: skip
    return seen.model_copy(update=update)


def crossing_alert(marker: SessionAssessment, assessed: Assessed) -> tuple[str, str, dict[str, str]]:
    """(subject, message, attributes) of the alert a running session's crossing raises."""
    due = marker.notification_due_at
    subject = (f"FLOPs Meter: notify the Commission by {due:%Y-%m-%d} - session {marker.session_name} exceeds"
               if due else f"FLOPs Meter: training session {marker.session_name} exceeds while running")  # fmt: skip
    assert marker.crossed_at is not None and marker.threshold is not None
    lines = [
        f"Training session {marker.session_name} ({marker.status}) is still running and its estimated compute "
        f"{marker.flops:.2e} FLOPs exceeds the threshold {marker.threshold:.2e} ({', '.join(marker.policies)}).",
        f"Crossed at the latest on {marker.crossed_at:%Y-%m-%d %H:%M} UTC ({marker.crossed_at_basis}).",
        *([f"Art. 52(1): notify the Commission by {due:%Y-%m-%d %H:%M} UTC (two weeks after the crossing)."]
          if due else []),
        "The session's record is written when it ends; this alert is sent once.",
        *(f"{r.policy}: {r.outcome.value} (threshold {r.threshold:.2e}, ratio {r.ratio:.3f})"
          for r in assessed.result.results),
    ]  # fmt: skip
    attributes = {"outcome": Outcome.EXCEEDS.value, "job": marker.session_name, "kind": "training-session",
                  "while_running": "true"}  # fmt: skip
    return subject[:100], "\n".join(lines), attributes
