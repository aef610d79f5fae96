"""Who launched a training job, for its record: the provenance captured at launch, read by key; CloudTrail's
LookupEvents only as the fallback.

A job launched by a service points at what launched it: a hyper-parameter tuning trial at its tuning job
(DescribeTrainingJob ``TuningJobArn``), an AutoML candidate at its AutoML job (``AutoMLJobArn``), a pipeline step
at its pipeline execution. For a pipeline step the pointer is the ``sagemaker:pipeline-execution-arn`` tag, which
is a claim only (anyone who may tag a job can write it): it is trusted when the execution's own steps
(ListPipelineExecutionSteps ``Metadata.TrainingJob.Arn``) ran this job, else ignored with a warning and the job is
attributed to its own ``CreateTrainingJob``. The person is whoever made that parent call; the record keeps the
chain job -> parent with the person's principal. ``not_found`` is written only after the configured wait, and
never because LookupEvents was throttled within it (``CloudTrailThrottled`` is transient: the message is retried).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from flopsmeter.audit.keys import parse_launch_arn
from flopsmeter.audit.record import CloudTrailRef, LaunchLink
from flopsmeter.contract import TAG_PIPELINE_EXECUTION_ARN
from flopsmeter.errors import CloudTrailPending, PermanentError, TransientError
from flopsmeter.ports import JobSource, TrailHit
from flopsmeter.service.dependencies import Dependencies, ServiceConfig
from flopsmeter.service.facts import JobFacts
from flopsmeter.service.provenance import read_provenance

# The call that creates each kind of parent (the fallback looks for it in CloudTrail).
PARENT_EVENT = {
    "hyper-parameter-tuning-job": "CreateHyperParameterTuningJob",
    "pipeline-execution": "StartPipelineExecution",
    "automl-job": "CreateAutoMLJobV2",
    "batch-service-job": "SubmitServiceJob",  # issue 26: an AWS Batch attempt -> the person who submitted
}


@dataclass(frozen=True)
class Subject:
    """What to find the launch of: the job itself, or the parent that launched it."""

    kind: str
    arn: str
    parent: bool


def launch_subject(facts: JobFacts, jobs: JobSource, warnings: list[str]) -> Subject:
    """The job's parent when a service launched it (tuning job, AutoML job, confirmed pipeline execution), else
    the job."""
    for arn in facts.launched_by:  # DescribeTrainingJob's own fields: SageMaker's word
        try:
            _, _, kind, _ = parse_launch_arn(arn)
        except ValueError:
            continue
        return Subject(kind, arn, parent=True)
    claimed = facts.tags.get(TAG_PIPELINE_EXECUTION_ARN)
    if claimed and _pipeline_ran_job(claimed, facts, jobs, warnings):
        return Subject("pipeline-execution", claimed, parent=True)
    return Subject("training-job", facts.arn, parent=False)


def _pipeline_ran_job(claimed: str, facts: JobFacts, jobs: JobSource, warnings: list[str]) -> bool:
    """Whether the pipeline execution the tag names ran this job (a transient error propagates: retried)."""
    try:
        kind = parse_launch_arn(claimed)[2]
    except ValueError:
        kind = None
    if kind != "pipeline-execution":
        warnings.append(f"the {TAG_PIPELINE_EXECUTION_ARN} tag is not a pipeline execution ARN; ignored")
        return False
    try:
        ran = jobs.pipeline_step_jobs(claimed)
    except PermanentError as err:
        warnings.append(
            f"cannot confirm that pipeline execution {claimed} ran this job ({str(err)[:200]}): attributed to the "
            "job's own CreateTrainingJob"
        )
        return False
    if facts.arn.lower() not in ran:
        warnings.append(
            f"the {TAG_PIPELINE_EXECUTION_ARN} tag names {claimed}, whose steps did not run this job: the tag is "
            "not trusted, the job is attributed to its own CreateTrainingJob"
        )
        return False
    return True


def resolve_launcher(
    facts: JobFacts, deps: Dependencies, config: ServiceConfig, now: datetime, warnings: list[str]
) -> CloudTrailRef:
    subject = launch_subject(facts, deps.jobs, warnings)
    provenance = read_provenance(deps.store, subject.arn)
    if provenance is not None:
        captured = TrailHit(
            provenance.event_id,
            provenance.event_time,
            provenance.principal_arn,
            provenance.source_ip,
            provenance.user_agent,
        )
        return _found(subject, captured, "provenance", provenance.event_name)
    created = facts.creation_time or facts.start_time or facts.end_time
    try:
        hit = _lookup(subject, facts, deps, created)
    except PermanentError as err:  # e.g. AccessDenied: the record is still written, saying why
        warnings.append(f"CloudTrail lookup failed: {err}")
        return CloudTrailRef(status="not_found", reason=f"lookup failed: {str(err)[:300]}", chain=_chain(subject))
    except TransientError as err:  # throttled: retried within the wait; after it, recorded as not found
        waited = (now - facts.end_time).total_seconds()
        if waited < config.cloudtrail_max_wait_seconds:
            raise
        reason = f"CloudTrail LookupEvents throttled after the {config.cloudtrail_max_wait_seconds:.0f}s wait: {err}"
        warnings.append(f"CloudTrail: {reason}")
        return CloudTrailRef(status="not_found", reason=reason[:1000], chain=_chain(subject))
    if hit is not None:
        return _found(subject, hit, "lookup_events")
    return _not_found(facts, subject, config, now, warnings)


def _lookup(subject: Subject, facts: JobFacts, deps: Dependencies, created: datetime) -> TrailHit | None:
    if subject.parent:
        return deps.trail.find_launch(PARENT_EVENT[subject.kind], subject.arn, created)
    return deps.trail.find_create_training_job(facts.name, created)


def _found(
    subject: Subject,
    hit: TrailHit,
    source: Literal["provenance", "lookup_events"],
    event_name: str | None = None,
) -> CloudTrailRef:
    """The launch call found (captured at launch, or in CloudTrail): its principal is the person."""
    return CloudTrailRef(
        status="found",
        event_id=hit.event_id,
        event_time=hit.event_time,
        principal_arn=hit.principal_arn,
        source_ip=hit.source_ip,
        user_agent=hit.user_agent,
        source=source,
        chain=_chain(subject, hit, event_name),
    )


def _chain(subject: Subject, hit: TrailHit | None = None, event_name: str | None = None) -> list[LaunchLink]:
    """job -> parent (with the parent's creator) for a job a service launched; empty for a job launched directly."""
    if not subject.parent:
        return []
    parent = LaunchLink(
        kind=subject.kind,
        arn=subject.arn,
        event_name=event_name or PARENT_EVENT[subject.kind],
        event_id=hit.event_id if hit else None,
        principal_arn=hit.principal_arn if hit else None,
    )
    return [parent]


def _not_found(
    facts: JobFacts, subject: Subject, config: ServiceConfig, now: datetime, warnings: list[str]
) -> CloudTrailRef:
    if subject.parent:
        what = f"{PARENT_EVENT[subject.kind]} event of {subject.arn}"
    else:
        what = f"CreateTrainingJob event for {facts.name}"
    waited = (now - facts.end_time).total_seconds()
    if waited < config.cloudtrail_max_wait_seconds:
        raise CloudTrailPending(
            f"{what} not captured and not in CloudTrail yet "
            f"({waited:.0f}s after the job's end; waiting up to {config.cloudtrail_max_wait_seconds:.0f}s)"
        )
    reason = (
        f"no {what} event in CloudTrail {waited:.0f}s after the job ended "
        f"(waited up to {config.cloudtrail_max_wait_seconds:.0f}s)"
    )
    warnings.append(f"CloudTrail: {reason}")
    return CloudTrailRef(status="not_found", reason=reason, chain=_chain(subject))
