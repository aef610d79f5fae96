"""Lineage: a job that starts from another job's checkpoint carries its parent's cumulative FLOPs.

The parent's own record is the source (its ``lineage.cumulative_flops`` already includes its ancestors).
A parent without a record yet is waited for (``ParentRecordPending``, retried through the queue) for a bounded
time; after that the parent's hardware ceiling stands in for it (an upper bound of the parent's own compute;
its ancestors, if any, are then unknown), with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from flopsmeter import contract
from flopsmeter.audit.keys import valid_job_name
from flopsmeter.aws.store import AuditStoreError, TransientStoreError
from flopsmeter.contract import TERMINAL_STATUSES
from flopsmeter.service.errors import JobNotFound, ParentRecordPending, TransientError
from flopsmeter.service.facts import JobFacts, clean_text, facts_from_description, job_ceiling, training_duration
from flopsmeter.service.ports import JobSource, RecordStore


@dataclass(frozen=True)
class ParentCompute:
    parent_job: str | None = None
    parent_record_key: str | None = None
    cumulative_flops: float = 0.0
    chain: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # issue 16: from the parent's record, when it has the blocks (None: unknown)
    lineage_kwh: float | None = None
    crossed_at: datetime | None = None


def parent_job_name(facts: JobFacts) -> tuple[str | None, list[str]]:
    env_value, tag_value = facts.setting(contract.ENV_PARENT_JOB, contract.TAG_PARENT_JOB)
    raw = env_value if env_value is not None else tag_value
    if raw is None or not raw.strip():
        return None, []
    name = raw.strip()
    if not valid_job_name(name):
        shown, _ = clean_text(raw, "parent job", 80)
        return None, [f"parent job {shown!r} is not a valid training job name; its compute is not included"]
    if name == facts.name:
        return None, ["the job names itself as its parent; ignored"]
    return name, []


def resolve_parent(
    facts: JobFacts, *, jobs: JobSource, store: RecordStore, now: datetime, max_wait_seconds: float
) -> ParentCompute:
    name, warnings = parent_job_name(facts)
    if name is None:
        return ParentCompute(warnings=warnings)
    try:
        job_description = jobs.describe(name)
        parent = facts_from_description(job_description, {})
    except JobNotFound:
        return ParentCompute(
            parent_job=name,
            warnings=[*warnings, f"parent job {name} does not exist in SageMaker; its compute is not included"],
        )
    waited = (now - facts.end_time).total_seconds()
    if parent.status in TERMINAL_STATUSES:
        key = parent.record_key
        try:
            if store.exists(key):
                record = store.get_record(key)
                return ParentCompute(
                    parent_job=name,
                    parent_record_key=key,
                    cumulative_flops=record.lineage.cumulative_flops,
                    chain=[*record.lineage.chain, name],
                    warnings=warnings,
                    lineage_kwh=record.energy.lineage_kwh if record.energy else None,
                    crossed_at=record.obligations.crossed_at if record.obligations else None,
                )
        except TransientStoreError as err:
            raise TransientError(f"reading the parent's record {key}: {err}") from err
        except (AuditStoreError, ValueError) as err:  # unreadable/unknown-schema record: fall back to the ceiling
            warnings.append(f"parent record {key} could not be read ({type(err).__name__}); ceiling used instead")
            waited = max_wait_seconds
    if waited < max_wait_seconds:
        raise ParentRecordPending(
            f"parent job {name} ({parent.status}) has no audit record yet; "
            f"waited {waited:.0f}s of {max_wait_seconds:.0f}s"
        )
    if parent.status not in TERMINAL_STATUSES:  # still running: its compute so far, up to now
        seconds, source, billable, _ = training_duration(job_description, now)
        parent = replace(
            parent, end_time=now, training_seconds=seconds, training_seconds_source=source, billable_seconds=billable
        )
    ceiling, _ = job_ceiling(parent)
    warnings.append(
        f"parent job {name} has no usable audit record after {waited:.0f}s; its hardware ceiling "
        f"{ceiling.flops:.2e} stands in for its compute (its own ancestors, if any, are not included)"
    )
    return ParentCompute(parent_job=name, cumulative_flops=ceiling.flops, chain=[name], warnings=warnings)
