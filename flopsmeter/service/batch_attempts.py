"""An AWS Batch attempt's own record names its service job and its siblings (issue 26 item 2).

Each attempt of a service job is a SageMaker training job (``AWSBatch…``) that Batch's service role launched; the
training-job event says nothing of Batch. So every service-job state change that names attempts indexes them
(``index/v1/batch-attempts/<sha256 of the training job's ARN>.json``: the service job's ARN, id and name), and when
an ``AWSBatch…`` training job is classified its record reads that entry: its ``batch`` block names the service job
and the attempts known so far, and its provenance follows the service job to SubmitServiceJob (the person who
submitted), never to the service role. An ``AWSBatch…`` job with no entry waits (retried) for the CloudTrail wait,
then is recorded with a warning that no service job named it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flopsmeter.audit.keys import batch_attempt_index_key
from flopsmeter.audit.record import BatchInfo
from flopsmeter.domain.times import as_utc
from flopsmeter.errors import JobNotFound, JobNotSettled, PermanentStoreError
from flopsmeter.ports import IndexStore
from flopsmeter.service.dependencies import Dependencies, ServiceConfig
from flopsmeter.service.facts import JobFacts, clean_text

ATTEMPT_PREFIX = "AWSBatch"  # AWS Batch names each attempt's training job AWSBatch<job name><hash>
TRAINING_JOB_ARN = "TrainingJobArn"  # ServiceResourceId.name (botocore's ServiceResourceIdName)


@dataclass(frozen=True)
class AttemptRef:
    arn: str
    started_at: datetime | None
    stopped_at: datetime | None
    status_reason: str | None
    preempted: bool


def attempts_of(job: Mapping[str, Any]) -> tuple[AttemptRef, ...]:
    """Every attempt the job names, once: ``attempts`` and ``preemptionSummary.recentPreemptedAttempts``."""
    preemption = job.get("preemptionSummary")
    preempted_list = preemption.get("recentPreemptedAttempts") if isinstance(preemption, Mapping) else None
    preempted = {a for a in (_arn(item) for item in preempted_list or []) if a}
    seen: dict[str, AttemptRef] = {}
    for item in [*(job.get("attempts") or []), *(preempted_list or [])]:
        arn = _arn(item)
        if not arn or arn.lower() in seen:
            continue
        reason = clean_text(item.get("statusReason"), "statusReason", 512)[0]
        seen[arn.lower()] = AttemptRef(arn, as_utc(item.get("startedAt")), as_utc(item.get("stoppedAt")), reason,
                                       arn in preempted or "preempt" in (reason or "").lower())  # fmt: skip
    return tuple(sorted(seen.values(), key=lambda a: (a.started_at is None, a.started_at or datetime.min)))


def _arn(item: object) -> str | None:
    ref = item.get("serviceResourceId") if isinstance(item, Mapping) else None
    if isinstance(ref, Mapping) and ref.get("name") == TRAINING_JOB_ARN and isinstance(ref.get("value"), str):
        return str(ref["value"])
    return None


def index_attempts(store: IndexStore, arn: str, job_id: str, name: str, attempts: list[str]) -> int:
    """One entry per attempt (first write wins); how many were new."""
    body = json.dumps({"service_job_arn": arn, "service_job_id": job_id, "service_job_name": name},
                      sort_keys=True).encode()  # fmt: skip
    return sum(int(store.put_immutable(batch_attempt_index_key(a), body)[0]) for a in attempts)


def _indexed(store: IndexStore, training_job_arn: str) -> dict[str, str] | None:
    key = batch_attempt_index_key(training_job_arn)
    try:
        if not store.exists(key):
            return None
        stored = store.get(key)
    except PermanentStoreError:
        return None
    try:
        found = json.loads(stored.body)
    except ValueError:
        return None
    return found if isinstance(found, dict) and found.get("service_job_id") else None


def attempt_block(
    facts: JobFacts, deps: Dependencies, config: ServiceConfig, now: datetime, warnings: list[str]
) -> BatchInfo | None:
    """The ``batch`` block of an attempt's own record (None for a job AWS Batch did not launch)."""
    if not facts.name.startswith(ATTEMPT_PREFIX):
        return None
    found = _indexed(deps.store, facts.arn)
    if found is None:
        waited = (now - facts.end_time).total_seconds()
        if waited < config.cloudtrail_max_wait_seconds:
            raise JobNotSettled(f"{facts.name} looks like an AWS Batch attempt; no service job named it yet")
        warnings.append(f"{facts.name} is named like an AWS Batch attempt but no service job event named it: it is "
                        "classified alone, and its attempts are not summed")  # fmt: skip
        return None
    siblings: list[str] = []
    if deps.batch is not None:
        try:
            job = deps.batch.describe_service_job(found["service_job_id"])
            siblings = [a.arn for a in attempts_of(job) if a.arn.lower() != facts.arn.lower()]
        except JobNotFound:
            warnings.append(f"AWS Batch service job {found['service_job_id']} is no longer described: siblings unknown")
    return BatchInfo(role="attempt", service_job_arn=found["service_job_arn"], service_job_id=found["service_job_id"],
                     service_job_name=found.get("service_job_name", ""), siblings=siblings)  # fmt: skip
