"""A terminal training job's facts, read from DescribeTrainingJob and its tags (authoritative over the event).

Pure functions over the describe output, so the classifier and the reconciler derive the same end time (and
so the same record key) from the same job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flopsmeter.audit.keys import record_key, valid_job_name
from flopsmeter.domain.hardware import HardwareCeiling, hardware_ceiling
from flopsmeter.domain.times import as_utc
from flopsmeter.errors import PermanentError
from flopsmeter.service.lineage_io import LineageIO, lineage_io_of

MAX_TEXT = 256  # longest free-text value (base model id, failure reason) copied into a record


@dataclass(frozen=True)
class InstanceGroup:
    instance_type: str
    instance_count: int


@dataclass(frozen=True)
class JobFacts:
    name: str
    arn: str
    account_id: str
    region: str
    status: str
    failure_reason: str | None
    creation_time: datetime | None
    start_time: datetime | None
    end_time: datetime
    instance_groups: tuple[InstanceGroup, ...]
    billable_seconds: int | None
    training_seconds: float
    training_seconds_source: str
    environment: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    final_metrics: Mapping[str, float] = field(default_factory=dict)  # FinalMetricDataList: name -> last value
    warnings: tuple[str, ...] = ()
    lineage_io: LineageIO = field(default_factory=LineageIO)  # what it reads and writes (issue 18)
    # managed customization and recipes (issue 17): ServerlessJobConfig, BillableTokenCount, HyperParameters
    serverless: Mapping[str, Any] | None = None
    billable_tokens: object = None
    hyperparameters: Mapping[str, str] = field(default_factory=dict)

    launched_by: tuple[str, ...] = ()  # provenance: TuningJobArn / AutoMLJobArn when a service launched the job

    @property
    def record_key(self) -> str:
        return record_key(self.account_id, self.region, self.end_time, self.name)

    def setting(self, env_name: str, tag_name: str) -> tuple[str | None, str | None]:
        """(environment value, tag value) of one job setting; either may be None."""
        return self.environment.get(env_name), self.tags.get(tag_name)


def arn_parts(arn: str) -> tuple[str, str]:
    """(account id, region) of a SageMaker ARN."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sagemaker" or not parts[4].isdigit():
        raise PermanentError(f"not a SageMaker ARN: {arn[:120]!r}")
    return parts[4], parts[3]


def job_end_time(job: Mapping[str, Any]) -> tuple[datetime, str | None]:
    """The job's end (TrainingEndTime, else LastModifiedTime, else CreationTime) and a warning if not the first."""
    end = as_utc(job.get("TrainingEndTime"))
    if end is not None:
        return end, None
    for name in ("LastModifiedTime", "CreationTime"):
        fallback = as_utc(job.get(name))
        if fallback is not None:
            return fallback, f"TrainingEndTime missing; {name} used as the job's end"
    raise PermanentError(f"training job {job.get('TrainingJobName')!r} has no end, modification or creation time")


def summary_record_key(summary: Mapping[str, Any]) -> str:
    """The record key of a ListTrainingJobs summary (same derivation as ``JobFacts.record_key``)."""
    account, region = arn_parts(str(summary["TrainingJobArn"]))
    end, _ = job_end_time(summary)
    return record_key(account, region, end, str(summary["TrainingJobName"]))


def clean_text(raw: str | None, what: str, limit: int = MAX_TEXT) -> tuple[str | None, str | None]:
    """Untrusted text made safe for a record: printable, bounded. Returns (value, warning)."""
    if raw is None:
        return None, None
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in raw[:limit]).strip()
    if cleaned != raw.strip() or len(raw) > limit:
        return cleaned or None, f"{what} was truncated or had non-printable characters replaced"
    return cleaned or None, None


def parse_bool(raw: str | None, what: str) -> tuple[bool, str | None]:
    """ "true"/"1"/"yes" -> True; anything unrecognised -> False with a warning (False is the conservative side)."""
    if raw is None:
        return False, None
    text = raw.strip().lower()
    if text in {"true", "1", "yes", "y"}:
        return True, None
    if text in {"false", "0", "no", "n", ""}:
        return False, None
    shown, _ = clean_text(raw, what, 32)
    return False, f"{what}={shown!r} is not a boolean; treated as false (the lower, conservative threshold)"


def _instance_groups(resource_config: Mapping[str, Any]) -> tuple[InstanceGroup, ...]:
    groups = []
    if resource_config.get("InstanceType"):
        groups.append(
            InstanceGroup(str(resource_config["InstanceType"]), int(resource_config.get("InstanceCount") or 1))
        )
    for group in resource_config.get("InstanceGroups") or []:  # heterogeneous clusters
        groups.append(InstanceGroup(str(group.get("InstanceType", "unknown")), int(group.get("InstanceCount") or 1)))
    if not groups:
        groups.append(InstanceGroup("unknown", 1))
    return tuple(groups)


def training_duration(job: Mapping[str, Any], end: datetime) -> tuple[float, str, int | None, list[str]]:
    """(seconds, source, billable seconds, warnings): the larger of start..end and BillableTimeInSeconds."""
    warnings: list[str] = []
    start = as_utc(job.get("TrainingStartTime"))
    source = "TrainingStartTime..TrainingEndTime"
    if start is None:
        start = as_utc(job.get("CreationTime"))
        source = "CreationTime..TrainingEndTime"
        if start is not None:
            warnings.append("TrainingStartTime missing; the ceiling spans CreationTime..end (conservative)")
    wall = max(0.0, (end - start).total_seconds()) if start is not None else 0.0
    billable_raw = job.get("BillableTimeInSeconds")
    billable = int(billable_raw) if isinstance(billable_raw, int | float) and billable_raw >= 0 else None
    if billable is not None and billable > wall:
        return float(billable), "BillableTimeInSeconds", billable, warnings
    if start is None and billable is None:
        source = "none: no start time and no billable time"
        warnings.append("the job has no start time and no billable time; its ceiling is zero seconds")
    return wall, source, billable, warnings


def facts_from_description(job: Mapping[str, Any], tags: Mapping[str, str]) -> JobFacts:
    name = str(job.get("TrainingJobName", ""))
    if not valid_job_name(name):
        raise PermanentError(f"DescribeTrainingJob returned an invalid job name {name[:80]!r}")
    arn = str(job.get("TrainingJobArn", ""))
    account, region = arn_parts(arn)
    end, end_warning = job_end_time(job)
    seconds, source, billable, warnings = training_duration(job, end)
    if end_warning:
        warnings.insert(0, end_warning)
    reason, reason_warning = clean_text(job.get("FailureReason"), "FailureReason", 1024)
    environment = {str(k): str(v) for k, v in (job.get("Environment") or {}).items()}
    return JobFacts(
        name=name,
        arn=arn,
        account_id=account,
        region=region,
        status=str(job.get("TrainingJobStatus")),
        failure_reason=reason,
        creation_time=as_utc(job.get("CreationTime")),
        start_time=as_utc(job.get("TrainingStartTime")),
        end_time=end,
        instance_groups=_instance_groups(job.get("ResourceConfig") or {}),
        billable_seconds=billable,
        training_seconds=seconds,
        training_seconds_source=source,
        environment=environment,
        tags=dict(tags),
        final_metrics=final_metrics(job),
        warnings=tuple(warnings) + ((reason_warning,) if reason_warning else ()),
        lineage_io=lineage_io_of(job),
        serverless=job.get("ServerlessJobConfig") or None,
        billable_tokens=job.get("BillableTokenCount"),
        hyperparameters={str(k): str(v) for k, v in (job.get("HyperParameters") or {}).items()},
        launched_by=tuple(str(job[k]) for k in ("TuningJobArn", "AutoMLJobArn") if job.get(k)),
    )


def final_metrics(job: Mapping[str, Any]) -> dict[str, float]:
    """DescribeTrainingJob's ``FinalMetricDataList`` as name -> value (entries without a number are skipped; the
    service decides what is sane)."""
    values: dict[str, float] = {}
    for item in job.get("FinalMetricDataList") or []:
        if not isinstance(item, Mapping):
            continue
        name, value = item.get("MetricName"), item.get("Value")
        if isinstance(name, str) and isinstance(value, int | float) and not isinstance(value, bool):
            values[name] = float(value)
    return values


def job_ceiling(facts: JobFacts) -> tuple[HardwareCeiling, list[str]]:
    """The hardware ceiling over every instance group (summed); descriptive fields from the largest group."""
    ceilings = [
        hardware_ceiling(g.instance_type, g.instance_count, facts.training_seconds) for g in facts.instance_groups
    ]
    warnings = [w for c in ceilings for w in c.warnings]
    if len(ceilings) == 1:
        return ceilings[0], warnings
    biggest = max(ceilings, key=lambda c: c.flops)
    total = sum(c.flops for c in ceilings)
    groups = ", ".join(f"{g.instance_count} x {g.instance_type}" for g in facts.instance_groups)
    warnings.append(f"heterogeneous cluster ({groups}): the ceiling is the sum over the groups")
    combined = HardwareCeiling(
        instance_type=biggest.instance_type,
        instance_count=sum(g.instance_count for g in facts.instance_groups),
        accelerator=biggest.accelerator,
        chips_per_instance=biggest.chips_per_instance,
        seconds=biggest.seconds,
        peak_flops_per_chip=biggest.peak_flops_per_chip,
        precision=biggest.precision,
        flops=total,
        bf16_flops=sum(c.bf16_flops for c in ceilings),
        known_instance=all(c.known_instance for c in ceilings),
        peak_source=biggest.peak_source,
        warnings=tuple(warnings),
    )
    return combined, warnings
