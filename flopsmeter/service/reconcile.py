"""The reconciler: a lost event never means a lost record.

Lists the training jobs (and Amazon Bedrock model customization jobs, and AWS Batch service jobs) that reached
Completed, Failed or Stopped (SUCCEEDED or FAILED) in the lookback window and classifies every one that has no record
yet, through the same ``classify_and_record`` (``classify_bedrock_job``, ``classify_batch_service_job``) (no
EventBridge event id; the record says it was reconciled). A job whose facts are not settled yet (CloudTrail lag, a
parent or an attempt without a record, throttling) is left for the next run; the lookback window is much longer than
those waits. AWS Batch service jobs are listed (their attempts indexed) before the training-job pass and classified
after it, so an attempt recorded there names its service job and is summed in the same run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from itertools import islice
from typing import Any

from flopsmeter.contract import ServiceMetric
from flopsmeter.domain.times import as_utc
from flopsmeter.errors import PermanentError, TransientError
from flopsmeter.service.batch import classify_batch_service_job
from flopsmeter.service.batch_reconcile import EndedServiceJobs, ended_service_jobs, service_job_record_key
from flopsmeter.service.bedrock import bedrock_summary_record_key, classify_bedrock_job
from flopsmeter.service.classifier import ClassifyResult, classify_and_record
from flopsmeter.service.dependencies import ClassifyRequest, Dependencies, ServiceConfig
from flopsmeter.service.facts import summary_record_key
from flopsmeter.service.session_watch import watch_sessions


@dataclass
class ReconcileReport:
    seen: int = 0
    already_recorded: int = 0
    recorded: list[str] = field(default_factory=list)
    deferred: dict[str, str] = field(default_factory=dict)  # job -> reason (transient; next run retries)
    failed: dict[str, str] = field(default_factory=dict)  # job -> reason (permanent)
    truncated: bool = False  # ``limit`` training jobs were looked at and there may be more (organization mode)
    sessions: dict[str, object] = field(default_factory=dict)  # issue 26: the training-session pass
    batch: dict[str, object] = field(default_factory=dict)  # issue 26: the AWS Batch service-job pass

    def as_dict(self) -> dict[str, object]:
        return {
            "seen": self.seen,
            "already_recorded": self.already_recorded,
            "recorded": self.recorded,
            "deferred": self.deferred,
            "failed": self.failed,
            **({"sessions": self.sessions} if self.sessions else {}),
            **({"batch": self.batch} if self.batch else {}),
        }


def reconcile(
    deps: Dependencies,
    config: ServiceConfig,
    *,
    lookback_hours: float,
    now: datetime | None = None,
    limit: int | None = None,
) -> ReconcileReport:
    """``limit``: look at no more than this many ended training jobs (so at most ~limit/100 ListTrainingJobs pages)."""
    now = now or deps.clock()
    since = now - timedelta(hours=lookback_hours)
    report = ReconcileReport()
    service_jobs = ended_service_jobs(deps, since, limit)  # issue 26: listed (attempts indexed) before training jobs
    for summary in islice(deps.jobs.recent_terminal_jobs(since), limit):
        name = str(summary.get("TrainingJobName"))
        _reconcile_one(name, partial(summary_record_key, summary), classify_and_record, deps, config, report)
    report.truncated = limit is not None and report.seen >= limit
    if deps.bedrock is not None:  # Amazon Bedrock customization jobs (issue 16 item 4)
        for summary in deps.bedrock.recent_terminal_jobs(since):
            end = as_utc(summary.get("endTime") or summary.get("lastModifiedTime"))
            if end is not None and end < since:
                continue
            name = str(summary.get("jobName"))
            _reconcile_one(name, partial(_bedrock_key, summary), classify_bedrock_job, deps, config, report)
    if service_jobs is not None:  # issue 26: AWS Batch service jobs whose terminal event was lost
        report.batch = _reconcile_service_jobs(*service_jobs, deps, config, limit)
    if deps.sessions is not None:  # issue 26: running sessions re-assessed, ended ones recorded
        report.sessions = watch_sessions(deps, config, lookback_hours=lookback_hours, now=now).as_dict()
    return report


def _reconcile_service_jobs(
    listing: EndedServiceJobs,
    summaries: list[Mapping[str, Any]],
    deps: Dependencies,
    config: ServiceConfig,
    limit: int | None,
) -> dict[str, object]:
    """Every listed service job with no record yet, classified as its terminal event would have been."""
    report = ReconcileReport()
    for summary in summaries:
        name = str(summary.get("jobId"))
        _reconcile_one(name, partial(service_job_record_key, summary), classify_batch_service_job, deps, config, report)
    truncated = limit is not None and report.seen >= limit
    return {"queues": listing.queues, **report.as_dict(), "unreadable": listing.unreadable, "truncated": truncated}


def _bedrock_key(summary: Mapping[str, Any]) -> str:
    key = bedrock_summary_record_key(summary)
    if key is None:
        raise PermanentError(f"ListModelCustomizationJobs summary without a usable name, ARN or time: {summary!r:.200}")
    return key


def _reconcile_one(
    name: str,
    key: Callable[[], str],
    classify: Callable[[ClassifyRequest, Dependencies, ServiceConfig], ClassifyResult],
    deps: Dependencies,
    config: ServiceConfig,
    report: ReconcileReport,
) -> None:
    """Classify one terminal job that has no record yet; what happened goes into ``report``."""
    report.seen += 1
    try:
        if deps.store.exists(key()):
            report.already_recorded += 1
            return
        result = classify(ClassifyRequest(name, None, reconciled=True), deps, config)
    except TransientError as err:
        report.deferred[name] = str(err)
        deps.metrics.add_metric(ServiceMetric.RECONCILE_DEFERRED, "Count", 1)
        deps.log.warning("reconcile deferred to the next run", extra={"job": name, "reason": str(err)})
        return
    except (PermanentError, KeyError, ValueError) as err:
        report.failed[name] = str(err)
        deps.metrics.add_metric(ServiceMetric.RECONCILE_FAILED, "Count", 1)
        deps.log.error("reconcile failed", extra={"job": name, "reason": str(err)})
        return
    if result.status == "recorded":
        report.recorded.append(name)
        deps.metrics.add_metric(ServiceMetric.JOBS_RECONCILED, "Count", 1)
        deps.log.warning("job had no record; reconciled", extra={"job": name, "key": result.key})
    elif result.status == "duplicate":
        report.already_recorded += 1
