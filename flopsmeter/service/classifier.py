"""The classifier service: one terminal training job in, one immutable audit record out (or a reason why not).

``classify_and_record`` gathers the facts (DescribeTrainingJob is authoritative over the event; tags; the
meter's CloudWatch metrics; the hardware ceiling; CloudTrail's CreateTrainingJob; the parent's record for
lineage), builds the record (``flopsmeter.service.records``), writes it once (``If-None-Match: *`` + Object Lock)
and then announces it (``flopsmeter.service.notifications``: EventBridge, and SNS when approaching or exceeding).
Jobs that read its work and were recorded before it are then re-assessed (``flopsmeter.service.late_parents``).

Everything it talks to comes in through ``Dependencies``, so tests hand it fakes. It raises only
``flopsmeter.errors`` types: ``TransientError`` (retry later) or ``PermanentError`` (dead-letter), its ports'
errors passed on unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from flopsmeter.audit.record import AuditRecord
from flopsmeter.contract import TERMINAL_STATUSES, ServiceMetric
from flopsmeter.domain.classification import Outcome
from flopsmeter.errors import AuditStoreError, PermanentStoreError
from flopsmeter.service.dependencies import ClassifyRequest, Dependencies, ServiceConfig
from flopsmeter.service.facts import facts_from_description
from flopsmeter.service.late_parents import reassess_after
from flopsmeter.service.lineage_index import write_index
from flopsmeter.service.notifications import announce, announced, worst_outcome
from flopsmeter.service.records import build_record


@dataclass(frozen=True)
class ClassifyResult:
    status: Literal["recorded", "duplicate", "ignored"]
    job_name: str
    key: str | None = None
    record: AuditRecord | None = None
    reason: str = ""
    notified: bool = False


def classify_and_record(request: ClassifyRequest, deps: Dependencies, config: ServiceConfig) -> ClassifyResult:
    """Classify one training job and write its audit record; a record already there makes this a no-op."""
    description = deps.jobs.describe(request.job_name)
    status = str(description.get("TrainingJobStatus"))
    if status not in TERMINAL_STATUSES:
        reason = f"DescribeTrainingJob says {status}: not terminal yet; a later state change will classify it"
        deps.log.info("job not terminal; ignored", extra={"job": request.job_name, "status": status})
        return ClassifyResult("ignored", request.job_name, reason=reason)
    facts = facts_from_description(description, {})

    def build() -> AuditRecord:
        tagged = facts_from_description(description, deps.jobs.tags(facts.arn))
        write_index(tagged, tagged.lineage_io, deps.store)  # issue 18: before the record, so none lacks its entries
        return build_record(tagged, request, deps, config, deps.clock())

    result = record_job(request, deps, config, facts.name, facts.record_key, build)
    reassess_after(result.record, result.key, facts, deps, config)  # issue 23: children that read it before it
    return result


def record_job(
    request: ClassifyRequest,
    deps: Dependencies,
    config: ServiceConfig,
    job_name: str,
    key: str,
    build: Callable[[], AuditRecord],
) -> ClassifyResult:
    """Write the record ``build`` makes at ``key`` once, count it, and announce it; a record already there (or
    written concurrently) makes this the duplicate path. Shared by every kind of job (training, Bedrock)."""
    if deps.store.exists(key):
        return _duplicate(request, deps, key, config)
    record = build()
    try:
        put = deps.store.put_record(key, record)
    except AuditStoreError:  # transient (retried) or permanent (dead-lettered): counted either way
        deps.metrics.add_metric(ServiceMetric.AUDIT_WRITE_FAILED, "Count", 1)
        raise
    if not put.written:  # a concurrent delivery won the race between our check and our write
        return _duplicate(request, deps, key, config)
    sealed = record if record.sha256 else record.sealed()
    worst = _count_business_metrics(sealed, deps)
    deps.log.info(
        "job classified",
        extra={
            "job": job_name,
            "outcome": sealed.outcome,
            "worst_outcome": worst,
            "method": sealed.flops.method,
            "cumulative_flops": sealed.lineage.cumulative_flops,
            "key": key,
            "version_id": put.version_id,
            "reconciled": request.reconciled,
        },
    )
    announce(sealed, key, deps, config)
    return ClassifyResult("recorded", job_name, key, sealed, "record written", notified=True)


def _count_business_metrics(record: AuditRecord, deps: Dependencies) -> str:
    """One ``JobsClassified``, the strictest ratio, the worst outcome and a missing CloudTrail event; the worst."""
    worst = worst_outcome(record)
    deps.metrics.add_metric(ServiceMetric.JOBS_CLASSIFIED, "Count", 1)
    deps.metrics.add_metric(ServiceMetric.THRESHOLD_RATIO, "None", max(c.ratio for c in record.classifications))
    if worst == Outcome.EXCEEDS.value:
        deps.metrics.add_metric(ServiceMetric.THRESHOLD_EXCEEDED, "Count", 1)
    elif worst == Outcome.APPROACHING.value:
        deps.metrics.add_metric(ServiceMetric.THRESHOLD_APPROACHING, "Count", 1)
    if record.cloudtrail.status == "not_found":
        deps.metrics.add_metric(ServiceMetric.CLOUDTRAIL_NOT_FOUND, "Count", 1)
    return worst


def _duplicate(request: ClassifyRequest, deps: Dependencies, key: str, config: ServiceConfig) -> ClassifyResult:
    """A record exists: nothing is written. Announce it only if an earlier attempt wrote it but never announced."""
    deps.metrics.add_metric(ServiceMetric.DUPLICATE_DELIVERY, "Count", 1)
    deps.log.info("duplicate delivery; record already exists", extra={"job": request.job_name, "key": key})
    try:
        if announced(deps, key):
            return ClassifyResult("duplicate", request.job_name, key, reason="record already exists")
        existing = deps.store.get_record(key)
    except (PermanentStoreError, ValueError) as err:
        deps.log.warning("existing record unreadable; not re-announced", extra={"key": key, "error": str(err)})
        return ClassifyResult("duplicate", request.job_name, key, reason=f"record exists but is unreadable: {err}")
    deps.log.warning("record exists but was never announced; announcing now", extra={"key": key})
    announce(existing, key, deps, config, fresh=False)
    return ClassifyResult(
        "duplicate", request.job_name, key, existing, "record already exists; announced now", notified=True
    )
