"""The reconciler: a lost event never means a lost record.

Lists the training jobs that reached Completed, Failed or Stopped in the lookback window and classifies every
one that has no record yet, through the same ``classify_and_record`` (no EventBridge event id; the record says
it was reconciled). A job whose facts are not settled yet (CloudTrail lag, a parent without a record, throttling)
is left for the next run; the lookback window is much longer than those waits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice

from flopsmeter.aws.store import AuditStoreError, TransientStoreError
from flopsmeter.contract import ServiceMetric
from flopsmeter.service.classifier import classify_and_record
from flopsmeter.service.errors import PermanentError, TransientError
from flopsmeter.service.facts import summary_record_key
from flopsmeter.service.ports import ClassifyRequest, Dependencies, ServiceConfig


@dataclass
class ReconcileReport:
    seen: int = 0
    already_recorded: int = 0
    recorded: list[str] = field(default_factory=list)
    deferred: dict[str, str] = field(default_factory=dict)  # job -> reason (transient; next run retries)
    failed: dict[str, str] = field(default_factory=dict)  # job -> reason (permanent)
    truncated: bool = False  # ``limit`` jobs were looked at and there may be more (organization mode's rotation)

    def as_dict(self) -> dict[str, object]:
        return {
            "seen": self.seen,
            "already_recorded": self.already_recorded,
            "recorded": self.recorded,
            "deferred": self.deferred,
            "failed": self.failed,
        }


def reconcile(
    deps: Dependencies,
    config: ServiceConfig,
    *,
    lookback_hours: float,
    now: datetime | None = None,
    limit: int | None = None,
) -> ReconcileReport:
    """``limit``: look at no more than this many ended jobs (so at most ~limit/100 ListTrainingJobs pages)."""
    now = now or deps.clock()
    report = ReconcileReport()
    for summary in islice(deps.jobs.recent_terminal_jobs(now - timedelta(hours=lookback_hours)), limit):
        name = str(summary.get("TrainingJobName"))
        report.seen += 1
        try:
            if deps.store.exists(summary_record_key(summary)):
                report.already_recorded += 1
                continue
            result = classify_and_record(ClassifyRequest(name, None, reconciled=True), deps, config)
        except (TransientError, TransientStoreError) as err:
            report.deferred[name] = str(err)
            deps.metrics.add_metric(ServiceMetric.RECONCILE_DEFERRED, "Count", 1)
            deps.log.warning("reconcile deferred to the next run", extra={"job": name, "reason": str(err)})
            continue
        except (PermanentError, AuditStoreError, KeyError, ValueError) as err:
            report.failed[name] = str(err)
            deps.metrics.add_metric(ServiceMetric.RECONCILE_FAILED, "Count", 1)
            deps.log.error("reconcile failed", extra={"job": name, "reason": str(err)})
            continue
        if result.status == "recorded":
            report.recorded.append(name)
            deps.metrics.add_metric(ServiceMetric.JOBS_RECONCILED, "Count", 1)
            deps.log.warning("job had no record; reconciled", extra={"job": name, "key": result.key})
        elif result.status == "duplicate":
            report.already_recorded += 1
    report.truncated = limit is not None and report.seen >= limit
    return report
