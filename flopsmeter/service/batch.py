"""The classifier for AWS Batch service jobs (issue 26 item 2): every attempt of one service job is one modification.

A fine-tune queued through AWS Batch runs as one SageMaker training job per attempt (``AWSBatch…``, launched by
Batch's service role); a preempted attempt is retried as a new training job. Each attempt keeps its own record (a
training job like any other); when the service job reaches SUCCEEDED or FAILED, this use case writes the service
job's record: the attempts summed (a preempted attempt whose compute was lost still counts: the compute was
spent), each attempt named with its FLOPs and where they came from, classified on the sum. DescribeServiceJob is
authoritative over the event (attempts, and the preempted attempts it still lists in ``preemptionSummary``).

An attempt's FLOPs: its own record (metered or hardware ceiling); while it has none, the message is retried
(``JobNotSettled``) up to the parent wait; after it, its hardware ceiling from DescribeTrainingJob, else from the
submitted request (``serviceRequestPayload``: instance type and count) over the attempt's start..stop. Provenance
follows SubmitServiceJob to the person who submitted (captured at launch, else CloudTrail), never the service role
that launched the attempts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flopsmeter import contract
from flopsmeter.audit.blocks import BlockInputs, with_energy_and_obligations
from flopsmeter.audit.keys import batch_record_key
from flopsmeter.audit.record import (
    AuditRecord,
    BatchAttempt,
    BatchInfo,
    FlopsInfo,
    HardwareCeilingInfo,
    JobInfo,
    Lineage,
    PolicyClassification,
    record_id_for,
)
from flopsmeter.domain.classification import classify
from flopsmeter.domain.hardware import hardware_ceiling
from flopsmeter.domain.pretrain import resolve_pretrain_compute
from flopsmeter.domain.thresholds import SYSTEMIC_RISK_TRAINING_FLOPS
from flopsmeter.domain.times import as_utc
from flopsmeter.errors import JobNotFound, JobNotSettled, PermanentError
from flopsmeter.service.batch_attempts import AttemptRef, attempts_of, index_attempts
from flopsmeter.service.classifier import ClassifyResult, record_job
from flopsmeter.service.dependencies import ClassifyRequest, Dependencies, ServiceConfig
from flopsmeter.service.facts import clean_text, facts_from_description, job_ceiling
from flopsmeter.service.launch_lookup import captured_or_looked_up
from flopsmeter.service.lineage_index import find_job
from flopsmeter.service.records import base_model_info

RECORD_STATUS = {"SUCCEEDED": "Completed", "FAILED": "Failed"}


@dataclass(frozen=True)
class ServiceJobFacts:
    job_id: str
    arn: str
    name: str
    account_id: str
    region: str
    status: str
    status_reason: str | None
    job_queue: str | None
    created: datetime
    ended: datetime
    attempts: tuple[AttemptRef, ...]
    payload: Mapping[str, Any]

    @property
    def record_key(self) -> str:
        return batch_record_key(self.account_id, self.region, self.ended, self.job_id)


def service_job_facts(job: Mapping[str, Any]) -> ServiceJobFacts:
    """The facts of a DescribeServiceJob reply; an unusable id, ARN or time is a permanent error."""
    job_id, arn = str(job.get("jobId", "")), str(job.get("jobArn", ""))
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "batch" or not parts[4].isdigit():
        raise PermanentError(f"not an AWS Batch service job ARN: {arn[:120]!r}")
    created = as_utc(job.get("createdAt")) or as_utc(job.get("startedAt"))
    if created is None:
        raise PermanentError(f"AWS Batch service job {job_id} has no creation time")
    ended = as_utc(job.get("stoppedAt")) or created
    try:
        payload = json.loads(str(job.get("serviceRequestPayload") or "{}"))
    except ValueError:
        payload = {}
    return ServiceJobFacts(
        job_id=job_id, arn=arn, name=str(job.get("jobName", job_id)), account_id=parts[4], region=parts[3],
        status=str(job.get("status")), status_reason=clean_text(job.get("statusReason"), "statusReason", 512)[0],
        job_queue=str(job.get("jobQueue")) if job.get("jobQueue") else None, created=created, ended=ended,
        attempts=attempts_of(job), payload=payload if isinstance(payload, Mapping) else {},
    )  # fmt: skip


def classify_batch_service_job(request: ClassifyRequest, deps: Dependencies, config: ServiceConfig) -> ClassifyResult:
    """Classify one ended AWS Batch service job (``request.job_name``: its job id) and write its record."""
    if deps.batch is None:
        raise PermanentError("an AWS Batch event arrived but the classifier has no Batch client configured")
    job = deps.batch.describe_service_job(request.job_name)
    status = str(job.get("status"))
    facts = service_job_facts(job)
    index_attempts(deps.store, facts.arn, facts.job_id, facts.name, [a.arn for a in facts.attempts])
    if status not in contract.BATCH_TERMINAL_STATUSES:
        return ClassifyResult("ignored", request.job_name, reason=f"DescribeServiceJob says {status}; attempts indexed")
    name = facts.name if len(facts.name) <= 63 else facts.job_id
    return record_job(request, deps, config, name, facts.record_key,
                      lambda: build_batch_record(facts, request, deps, config))  # fmt: skip


@dataclass(frozen=True)
class AttemptFigures:
    attempt: BatchAttempt
    ceiling: HardwareCeilingInfo
    record: AuditRecord | None
    instances: tuple[str, int] = ("unknown", 1)  # instance type and count


def attempt_figures(
    ref: AttemptRef, facts: ServiceJobFacts, deps: Dependencies, config: ServiceConfig, warnings: list[str]
) -> AttemptFigures:
    """One attempt's FLOPs: its record, else (after the wait) its hardware ceiling."""
    for arn in dict.fromkeys((ref.arn, ref.arn.lower())):
        found = find_job(deps.store, arn)
        # the index entry goes first: an attempt still waiting (CloudTrail, its service job) has one and no record
        if found is not None and found.entry is not None and deps.store.exists(found.entry.record_key):
            record = deps.store.get_record(found.entry.record_key)
            key = found.entry.record_key
            attempt = _attempt(ref, record.flops.classified_flops, record.flops.method, "record", key)
            instances = (record.job.instance_type, record.job.instance_count)
            return AttemptFigures(attempt, record.flops.hardware_ceiling, record, instances)
    waited = (deps.clock() - facts.ended).total_seconds()
    if waited < config.parent_max_wait_seconds:
        raise JobNotSettled(f"attempt {ref.arn} of service job {facts.job_id} has no record yet ({waited:.0f}s)")
    name = ref.arn.rsplit("/", 1)[-1]
    try:
        job = facts_from_description(deps.jobs.describe(name), {})
        ceiling, _ = job_ceiling(job)
        source = "describe_training_job"
    except JobNotFound:
        ceiling, source = _requested_ceiling(ref, facts, name, warnings), "submitted_request"
    flops = ceiling.flops
    unbounded = _unbounded(ref, facts, ceiling.seconds) if source == "submitted_request" else None
    if unbounded:
        flops = max(flops, float(SYSTEMIC_RISK_TRAINING_FLOPS))
        warnings.append(f"attempt {name} has no record and {unbounded}, so its compute has no upper bound: counted "
                        f"at {flops:.2e}, the AI Act's Art. 51(2) presumption, never below ({source})")  # fmt: skip
    else:
        warnings.append(f"attempt {name} has no record: counted at its hardware ceiling {flops:.2e} ({source})")
    info = HardwareCeilingInfo.from_ceiling(ceiling)
    instances = (ceiling.instance_type, ceiling.instance_count)
    return AttemptFigures(_attempt(ref, flops, "hardware_ceiling", source, None), info, None, instances)


def _requested_count(facts: ServiceJobFacts) -> int | None:
    """The instance count of the submitted CreateTrainingJob request, when it names a valid one."""
    resources = facts.payload.get("ResourceConfig")
    count = resources.get("InstanceCount") if isinstance(resources, Mapping) else None
    return count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else None


def _unbounded(ref: AttemptRef, facts: ServiceJobFacts, seconds: float) -> str | None:
    """Why the submitted request cannot bound the attempt's compute, or None when it can."""
    if not _requested_count(facts):
        return "the submitted request names no instance count (ResourceConfig.InstanceCount)"
    if seconds <= 0 and (ref.started_at is None or ref.stopped_at is None):
        return "neither the attempt nor its service job states how long it ran"
    return None


def _requested_ceiling(ref: AttemptRef, facts: ServiceJobFacts, name: str, warnings: list[str]) -> Any:
    """The attempt's ceiling from the submitted request: its instances over the attempt's run, a time it does not
    state bounded by the service job's own (createdAt..stoppedAt: the attempt ran within them)."""
    resources = facts.payload.get("ResourceConfig")
    resources = resources if isinstance(resources, Mapping) else {}
    started, stopped = ref.started_at or facts.created, ref.stopped_at or facts.ended
    if ref.started_at is None or ref.stopped_at is None:
        warnings.append(f"attempt {name} states no start or stop time: bounded by the service job's createdAt.."
                        "stoppedAt")  # fmt: skip
    seconds = max(0.0, (stopped - started).total_seconds())
    return hardware_ceiling(str(resources.get("InstanceType") or "unknown"), _requested_count(facts) or 1, seconds)


def _attempt(ref: AttemptRef, flops: float, method: str, source: str, key: str | None) -> BatchAttempt:
    return BatchAttempt(training_job_arn=ref.arn, started_at=ref.started_at, stopped_at=ref.stopped_at,
                        status_reason=ref.status_reason, preempted=ref.preempted, flops=flops, method=method,
                        source=source, record_key=key)  # fmt: skip


def build_batch_record(
    facts: ServiceJobFacts, request: ClassifyRequest, deps: Dependencies, config: ServiceConfig
) -> AuditRecord:
    now = deps.clock()
    warnings: list[str] = ["reconciled: the scheduled reconciler classified it"] if request.reconciled else []
    figures = [attempt_figures(ref, facts, deps, config, warnings) for ref in facts.attempts]
    if not figures:
        warnings.append("the service job names no attempt: no training job ran, its compute is zero")
    own = sum(f.attempt.flops for f in figures)
    inherited = _inherited(figures)
    cumulative = own + inherited
    recorded = [f.record for f in figures if f.record is not None]
    pretrain = resolve_pretrain_compute(base_model_id=None)
    base = recorded[-1].base_model if recorded else base_model_info(pretrain)
    if not recorded:
        warnings += list(pretrain.warnings)
    preempted = sum(1 for f in figures if f.attempt.preempted)
    if preempted:
        warnings.append(f"{preempted} preempted attempt(s) counted: their compute was spent, even where lost")
    cloudtrail = captured_or_looked_up(
        deps.store, facts.arn,
        lambda: deps.trail.find_launch(contract.SUBMIT_SERVICE_JOB, facts.arn, facts.created),
        (contract.SUBMIT_SERVICE_JOB, facts.job_id), facts.ended, now, config, warnings,
    )  # fmt: skip
    result = classify(cumulative, base.pretrain_flops, systemic_risk_base=base.systemic_risk,
                      primary_policy=config.primary_policy, approaching_fraction=config.approaching_fraction,
                      warnings=warnings)  # fmt: skip
    seconds = sum(
        (f.attempt.stopped_at - f.attempt.started_at).total_seconds()
        for f in figures
        if f.attempt.started_at and f.attempt.stopped_at
    )
    ceiling = _summed_ceiling(figures, seconds)
    instance_type, instance_count = figures[-1].instances if figures else ("unknown", 1)
    methods = {f.attempt.method for f in figures}
    record = AuditRecord(
        record_id=record_id_for(facts.arn),
        recorded_at=now,
        job=JobInfo(name=facts.name if len(facts.name) <= 63 else facts.job_id, arn=facts.arn,
                    account_id=facts.account_id, region=facts.region,
                    status=RECORD_STATUS.get(facts.status, "Failed"),
                    failure_reason=facts.status_reason if facts.status == "FAILED" else None,
                    creation_time=facts.created, end_time=facts.ended, instance_type=instance_type,
                    instance_count=max(1, instance_count), training_seconds=max(0.0, seconds),
                    training_seconds_source="sum of the attempts' startedAt..stoppedAt (DescribeServiceJob)"),
        base_model=base,
        flops=FlopsInfo(method="metered" if methods == {"metered"} else "hardware_ceiling", classified_flops=own,
                        hardware_ceiling=ceiling,
                        uncertainty=f"the sum of {len(figures)} attempt(s), each as its own record classified it "
                        "(metered, else its hardware ceiling)"),
        classifications=[PolicyClassification.from_result(r) for r in result.results],
        primary_policy=result.primary_policy,
        outcome=result.primary.outcome.value,
        cloudtrail=cloudtrail,
        eventbridge_event_id=request.eventbridge_event_id,
        lineage=Lineage(own_flops=own, parent_cumulative_flops=inherited, cumulative_flops=cumulative),
        warnings=list(dict.fromkeys(result.warnings)),
        batch=BatchInfo(role="service_job", service_job_arn=facts.arn, service_job_id=facts.job_id,
                        service_job_name=facts.name, job_queue=facts.job_queue, status=facts.status,
                        attempts=[f.attempt for f in figures], preempted_attempts=preempted, summed_flops=own),
    )  # fmt: skip
    blocks = BlockInputs(established_outside_eu=config.established_outside_eu, energy=config.energy)
    return with_energy_and_obligations(record, blocks)


def _inherited(figures: list[AttemptFigures]) -> float:
    """What the attempts started from outside the service job: the largest parent lineage of an attempt whose
    parent is not a sibling (a sibling's compute is already in the sum)."""
    siblings = {f.attempt.training_job_arn.rsplit("/", 1)[-1].lower() for f in figures}
    inherited = 0.0
    for f in figures:
        if f.record is None or not f.record.lineage.parent_cumulative_flops:
            continue
        if (f.record.lineage.parent_job or "").lower() in siblings:
            continue
        inherited = max(inherited, f.record.lineage.parent_cumulative_flops)
    return inherited


def _summed_ceiling(figures: list[AttemptFigures], seconds: float) -> HardwareCeilingInfo:
    if not figures:
        return HardwareCeilingInfo.from_ceiling(hardware_ceiling("unknown", 1, 0.0))
    first = figures[-1].ceiling
    return first.model_copy(update={"flops": sum(f.ceiling.flops for f in figures), "seconds": seconds})
