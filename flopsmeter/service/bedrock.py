"""The classifier for Amazon Bedrock model customization jobs: one terminal job in, one immutable record out.

Same queue, same record, same announcements as training jobs (``flopsmeter.service.classifier.record_job``); what
differs is where the facts come from. GetModelCustomizationJob is authoritative over the event. Bedrock exposes
no FLOPs, no instances and no token count, so the job is classified with the ``estimated`` method
(``flopsmeter.domain.customization.estimate_bedrock_job``): the base model's per-token cost x a documented bound
on its tokens, a declaration asked for. The base model's pretraining compute comes from the job's tags
(``flopsmeter:pretrain-flops``, ``flopsmeter:base-model``, ``flopsmeter:systemic-risk-base``) or the catalog
entry of its ``baseModelArn``. Provenance: CloudTrail's ``CreateModelCustomizationJob``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flopsmeter import contract
from flopsmeter.audit.blocks import BlockInputs, with_energy_and_obligations
from flopsmeter.audit.keys import bedrock_record_key, valid_bedrock_job_name
from flopsmeter.audit.record import (
    AuditRecord,
    CloudTrailRef,
    HardwareCeilingInfo,
    JobInfo,
    Lineage,
    PolicyClassification,
    record_id_for,
)
from flopsmeter.domain.classification import classify
from flopsmeter.domain.customization import estimate_bedrock_job
from flopsmeter.domain.hardware import hardware_ceiling
from flopsmeter.domain.times import as_utc
from flopsmeter.errors import PermanentError
from flopsmeter.ports import BedrockSource
from flopsmeter.service.classifier import ClassifyResult, record_job
from flopsmeter.service.customization import NO_INSTANCES, customization_block, estimated_flops, tagged_pretrain
from flopsmeter.service.dependencies import ClassifyRequest, Dependencies, ServiceConfig
from flopsmeter.service.facts import clean_text
from flopsmeter.service.launch_lookup import captured_or_looked_up
from flopsmeter.service.records import base_model_info

INSTANCE_PLACEHOLDER = "bedrock"  # no instance type: the hardware ceiling's unknown-instance placeholder
RECONCILED = "no state-change event was processed for this job; the scheduled reconciler classified it"


@dataclass(frozen=True)
class BedrockFacts:
    name: str
    arn: str
    account_id: str
    region: str
    status: str
    failure_reason: str | None
    creation_time: datetime
    end_time: datetime
    seconds: float
    job: Mapping[str, Any]
    tags: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def record_key(self) -> str:
        return bedrock_record_key(self.account_id, self.region, self.end_time, self.name)


def bedrock_facts(job: Mapping[str, Any], tags: Mapping[str, str]) -> BedrockFacts:
    """The facts of a GetModelCustomizationJob reply; an unusable name, ARN or time is a permanent error."""
    name = str(job.get("jobName", ""))
    if not valid_bedrock_job_name(name):
        raise PermanentError(f"GetModelCustomizationJob returned an invalid job name {name[:80]!r}")
    arn = str(job.get("jobArn", ""))
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "bedrock" or not parts[4].isdigit():
        raise PermanentError(f"not a Bedrock model customization job ARN: {arn[:120]!r}")
    created = as_utc(job.get("creationTime"))
    if created is None:
        raise PermanentError(f"model customization job {name} has no creation time")
    end, end_warning = job_end(job, created)
    warnings = [end_warning] if end_warning else []
    reason, reason_warning = clean_text(job.get("failureMessage"), "failureMessage", 1024)
    return BedrockFacts(
        name=name,
        arn=arn,
        account_id=parts[4],
        region=parts[3],
        status=str(job.get("status")),
        failure_reason=reason,
        creation_time=created,
        end_time=end,
        seconds=max(0.0, (end - created).total_seconds()),
        job=job,
        tags=dict(tags),
        warnings=(*warnings, *([reason_warning] if reason_warning else [])),
    )


def job_end(job: Mapping[str, Any], created: datetime) -> tuple[datetime, str | None]:
    """The job's end: ``endTime``, else ``lastModifiedTime``, else its creation (with a warning when not the first).
    The same for a GetModelCustomizationJob reply and a ListModelCustomizationJobs summary, so both give one key."""
    end = as_utc(job.get("endTime"))
    if end is not None:
        return end, None
    return as_utc(job.get("lastModifiedTime")) or created, "endTime missing; lastModifiedTime (else creationTime) used"


def bedrock_summary_record_key(summary: Mapping[str, Any]) -> str | None:
    """The record key of a ListModelCustomizationJobs summary (None when it lacks what the key needs)."""
    created = as_utc(summary.get("creationTime"))
    parts = str(summary.get("jobArn", "")).split(":", 5)
    name = str(summary.get("jobName", ""))
    if created is None or len(parts) != 6 or not parts[4].isdigit() or not valid_bedrock_job_name(name):
        return None
    return bedrock_record_key(parts[4], parts[3], job_end(summary, created)[0], name)


def classify_bedrock_job(request: ClassifyRequest, deps: Dependencies, config: ServiceConfig) -> ClassifyResult:
    """Classify one Bedrock model customization job and write its audit record (a no-op when it exists)."""
    source = deps.bedrock
    if source is None:
        raise PermanentError("a Bedrock event arrived but the classifier has no Bedrock client configured")
    job = source.get_job(request.job_name)
    status = str(job.get("status"))
    if status not in contract.BEDROCK_TERMINAL_STATUSES:
        deps.log.info("job not terminal; ignored", extra={"job": request.job_name, "status": status})
        return ClassifyResult("ignored", request.job_name, reason=f"GetModelCustomizationJob says {status}")
    facts = bedrock_facts(job, {})

    def build() -> AuditRecord:
        tagged = bedrock_facts(job, source.tags(facts.arn))
        return build_bedrock_record(tagged, source, request, config, deps.clock())

    return record_job(request, deps, config, facts.name, facts.record_key, build)


def build_bedrock_record(
    facts: BedrockFacts, source: BedrockSource, request: ClassifyRequest, config: ServiceConfig, now: datetime
) -> AuditRecord:
    estimate = estimate_bedrock_job(facts.job, facts.tags.get(contract.TAG_DECLARED_TOKENS))
    warnings = [*facts.warnings, *estimate.warnings(), NO_INSTANCES]
    if request.reconciled:
        warnings.insert(0, f"reconciled: {RECONCILED}")
    pretrain, pretrain_warnings = tagged_pretrain(facts.tags, estimate.base.model_id)
    warnings += pretrain_warnings
    ceiling = hardware_ceiling(INSTANCE_PLACEHOLDER, 1, facts.seconds)
    flops = estimate.modification_flops
    cloudtrail = _provenance(facts, source, config, now, warnings)
    result = classify(flops, pretrain.flops, systemic_risk_base=pretrain.systemic_risk,
                      primary_policy=config.primary_policy, approaching_fraction=config.approaching_fraction,
                      warnings=warnings)  # fmt: skip
    record = AuditRecord(
        record_id=record_id_for(facts.arn),
        recorded_at=now,
        job=JobInfo(
            name=facts.name,
            arn=facts.arn,
            account_id=facts.account_id,
            region=facts.region,
            status=facts.status,
            failure_reason=facts.failure_reason,
            creation_time=facts.creation_time,
            end_time=facts.end_time,
            instance_type=INSTANCE_PLACEHOLDER,
            instance_count=1,
            training_seconds=facts.seconds,
            training_seconds_source="creationTime..endTime (GetModelCustomizationJob)",
        ),
        base_model=base_model_info(pretrain),
        flops=estimated_flops(estimate, HardwareCeilingInfo.from_ceiling(ceiling)),
        classifications=[PolicyClassification.from_result(r) for r in result.results],
        primary_policy=result.primary_policy,
        outcome=result.primary.outcome.value,
        cloudtrail=cloudtrail,
        eventbridge_event_id=request.eventbridge_event_id,
        lineage=Lineage(own_flops=flops, cumulative_flops=flops),
        warnings=list(dict.fromkeys(result.warnings)),
        customization=customization_block(estimate),
    )
    blocks = BlockInputs(established_outside_eu=config.established_outside_eu, energy=config.energy)
    return with_energy_and_obligations(record, blocks)  # issue 16: energy, obligations (as for training jobs)


def _provenance(
    facts: BedrockFacts, source: BedrockSource, config: ServiceConfig, now: datetime, warnings: list[str]
) -> CloudTrailRef:
    """The job's CreateModelCustomizationJob event; wait for CloudTrail's delivery lag, then say it was not found."""
    return captured_or_looked_up(
        None,
        facts.arn,
        lambda: source.find_create_job(facts.name, facts.arn, facts.creation_time),
        (contract.CREATE_MODEL_CUSTOMIZATION_JOB, facts.name),
        facts.end_time,
        now,
        config,
        warnings,
    )
