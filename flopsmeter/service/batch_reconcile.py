"""The reconciler's listing of AWS Batch service jobs that ended (issue 26 item 2): a lost terminal "Batch Service Job
State Change" event never means a lost record.

ListServiceJobs lists one job queue in one status, so every queue of type ``SAGEMAKER_TRAINING`` (DescribeJobQueues)
is listed in SUCCEEDED and FAILED, and a job whose ``stoppedAt`` is before the lookback window is passed over (one
with no ``stoppedAt`` is kept: its end is not known to be outside it). Each job it yields is looked up at the key the
event path writes (``service_job_record_key``) and, with no record there, classified by
``classify_batch_service_job`` as the event would have been (``flopsmeter.service.reconcile``).

The jobs are listed, and the attempts of each one with no record indexed (``index_attempts``, as its events would
have), before the reconciler's training-job pass: an attempt whose own event was lost too is then recorded there
naming its service job, and the service job, classified after that pass, sums the attempts' records.

A listing that cannot be read (AccessDenied: an older reader role; throttling; a timeout) is never passed over in
silence: the queue and status (or DescribeJobQueues) go into ``unreadable`` with the reason, the error is logged and
counted as ``ReconcileFailed`` (alarmed), and the listing goes on with the next queue and status.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any

from flopsmeter import contract
from flopsmeter.domain.times import as_utc
from flopsmeter.errors import PermanentError, TransientError
from flopsmeter.ports import BatchSource, LogSink, MetricSink
from flopsmeter.service.batch import service_job_facts
from flopsmeter.service.batch_attempts import index_attempts
from flopsmeter.service.dependencies import Dependencies

DESCRIBE_JOB_QUEUES = "DescribeJobQueues"  # the ``unreadable`` entry when the queues themselves cannot be listed


def service_job_record_key(summary: Mapping[str, Any]) -> str:
    """The key the event path writes the service job's record at (its ARN, job id and ``stoppedAt``)."""
    return service_job_facts(summary).record_key


@dataclass
class EndedServiceJobs:
    """Iterates the ListServiceJobs summaries of every SAGEMAKER_TRAINING queue that ended at or after ``since``;
    what it could not read is in ``unreadable`` (``queue status`` or ``DescribeJobQueues`` -> the reason)."""

    batch: BatchSource
    since: datetime
    metrics: MetricSink
    log: LogSink
    queues: int = 0
    unreadable: dict[str, str] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        try:
            queues = self.batch.sagemaker_training_queues()
        except (TransientError, PermanentError) as err:
            self._unreadable(DESCRIBE_JOB_QUEUES, err)
            return
        self.queues = len(queues)
        for queue in queues:
            for status in contract.BATCH_TERMINAL_STATUSES:
                yield from self._listed(queue, status)

    def _listed(self, queue: str, status: str) -> Iterator[Mapping[str, Any]]:
        try:
            for summary in self.batch.service_jobs(queue, status):
                ended = as_utc(summary.get("stoppedAt"))
                if ended is None or ended >= self.since:
                    yield summary
        except (TransientError, PermanentError) as err:
            self._unreadable(f"{queue} {status}", err)

    def _unreadable(self, what: str, err: Exception) -> None:
        reason = f"{type(err).__name__}: {err}"[:500]
        self.unreadable[what] = reason
        self.metrics.add_metric(contract.ServiceMetric.RECONCILE_FAILED, "Count", 1)
        self.log.error("AWS Batch service jobs could not be listed: ended jobs there are not checked this run",
                       extra={"listing": what, "reason": reason})  # fmt: skip


def ended_service_jobs(
    deps: Dependencies, since: datetime, limit: int | None
) -> tuple[EndedServiceJobs, list[Mapping[str, Any]]] | None:
    """The listing and (at most ``limit``) summaries of the service jobs that ended since ``since``, the attempts of
    each one with no record indexed; None without a Batch client."""
    if deps.batch is None:
        return None
    listing = EndedServiceJobs(deps.batch, since, deps.metrics, deps.log)
    summaries = list(islice(listing, limit))
    for summary in summaries:
        _index_attempts_of(summary, deps.batch, deps)
    return listing, summaries


def _index_attempts_of(summary: Mapping[str, Any], batch: BatchSource, deps: Dependencies) -> None:
    try:
        if deps.store.exists(service_job_record_key(summary)):
            return
        facts = service_job_facts(batch.describe_service_job(str(summary.get("jobId"))))
        index_attempts(deps.store, facts.arn, facts.job_id, facts.name, [a.arn for a in facts.attempts])
    except (TransientError, PermanentError, ValueError):
        return  # the job's classification, after the training-job pass, meets the same error and reports it
