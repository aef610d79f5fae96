"""What the classifier service talks to, as small protocols, and the plain values that cross them.

The Lambda handlers hand the service boto3-backed adapters (``flopsmeter.aws``); tests hand it fakes.
Adapters raise only ``flopsmeter.service.errors`` types (``TransientError`` / ``PermanentError`` and their
subclasses), never botocore's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from flopsmeter.audit.record import AuditRecord, utcnow
from flopsmeter.aws.store import PutResult, StoredObject
from flopsmeter.domain.energy import EnergyAssumptions
from flopsmeter.domain.thresholds import DEFAULT_APPROACHING_FRACTION, DEFAULT_PRIMARY_POLICY


@dataclass(frozen=True)
class MeteredFigures:
    """Maxima of the meter's cumulative CloudWatch metrics over the job's time window (None: no datapoint).

    Values are passed through raw: the service decides what is sane (NaN, inf and negatives are not).
    """

    cumulative_flops: float | None = None
    tokens: float | None = None
    non_padding_tokens: float | None = None
    recompute_flops: float | None = None
    datapoints: int = 0
    meter_incomplete: float | None = None  # Maximum of MeterIncomplete: anything but None or 0 distrusts the figure
    restarts: int = 0  # falls in the cumulative series (the process started again from zero): segments were summed
    threshold_crossed_at: datetime | None = None  # issue 16: the meter's ThresholdCrossed (start of its first period)


@dataclass(frozen=True)
class TrailHit:
    """The CloudTrail ``CreateTrainingJob`` event of a job."""

    event_id: str
    event_time: datetime | None
    principal_arn: str | None
    source_ip: str | None
    user_agent: str | None


class JobSource(Protocol):
    def describe(self, job_name: str) -> Mapping[str, Any]:
        """DescribeTrainingJob; raises ``JobNotFound`` for an unknown job."""
        ...

    def tags(self, job_arn: str) -> dict[str, str]: ...

    def recent_terminal_jobs(self, since: datetime) -> Iterator[Mapping[str, Any]]:
        """ListTrainingJobs summaries of Completed/Failed/Stopped jobs modified after ``since``."""
        ...

    def pipeline_step_jobs(self, execution_arn: str) -> frozenset[str]:
        """ARNs (lower-case) of the training jobs a pipeline execution's steps ran (ListPipelineExecutionSteps)."""
        ...


class MeterSource(Protocol):
    def job_metrics(self, job_name: str, start: datetime, end: datetime) -> MeteredFigures: ...


class TrailSource(Protocol):
    def find_create_training_job(self, job_name: str, created: datetime) -> TrailHit | None: ...

    def find_launch(self, event_name: str, resource_arn: str, before: datetime) -> TrailHit | None:
        """The call that created a parent (tuning job, pipeline execution, AutoML job) of a job created ``before``."""
        ...


class BedrockSource(Protocol):
    """Amazon Bedrock model customization jobs (issue 16 item 4): ``flopsmeter.aws.bedrock.BedrockJobs``."""

    def get_job(self, job_identifier: str) -> Mapping[str, Any]:
        """GetModelCustomizationJob; raises ``JobNotFound`` for an unknown job."""
        ...

    def tags(self, job_arn: str) -> dict[str, str]: ...

    def find_create_job(self, job_name: str, job_arn: str, created: datetime) -> TrailHit | None: ...

    def recent_terminal_jobs(self, since: datetime) -> Iterator[Mapping[str, Any]]:
        """ListModelCustomizationJobs summaries of Completed/Failed/Stopped jobs that may have ended after ``since``."""
        ...


class RecordStore(Protocol):
    """The subset of ``flopsmeter.aws.store.AuditStore`` the service uses."""

    bucket: str

    def exists(self, key: str) -> bool: ...

    def put_record(self, key: str, record: AuditRecord) -> PutResult: ...

    def get_record(self, key: str) -> AuditRecord: ...

    def get(self, key: str) -> StoredObject: ...  # lineage index entries

    def list_keys(self, prefix: str) -> Iterator[dict[str, Any]]: ...  # lineage index writers of a location

    def get_if_exists(self, key: str) -> StoredObject | None: ...

    def put_immutable(
        self, key: str, body: bytes, *, content_type: str = ..., metadata: dict[str, str] | None = ...
    ) -> tuple[bool, str | None, datetime]: ...


class Publisher(Protocol):
    def recorded(self, detail: Mapping[str, Any], *, resources: list[str]) -> None:
        """Publish a "FLOPs Classification Recorded" event."""
        ...

    def alert(self, subject: str, message: str, attributes: Mapping[str, str]) -> None:
        """Send an alert (SNS) about an approaching or exceeding job."""
        ...


class MetricSink(Protocol):
    """Powertools ``Metrics`` satisfies this (EMF); tests use a list."""

    def add_metric(self, name: str, unit: Any, value: float) -> None: ...


class LogSink(Protocol):
    """A stdlib ``logging.Logger`` or a Powertools ``Logger``."""

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None: ...

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None: ...

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None: ...


@dataclass(frozen=True)
class ServiceConfig:
    primary_policy: str = DEFAULT_PRIMARY_POLICY
    approaching_fraction: float = DEFAULT_APPROACHING_FRACTION
    cloudtrail_max_wait_seconds: float = 3600.0
    parent_max_wait_seconds: float = 3600.0
    alerts_enabled: bool = True
    # --- issue 16 (energy and obligations) ---------------------------------------------------------------------
    established_outside_eu: bool = False  # the provider's establishment: Art. 54 (authorised representative)
    energy: EnergyAssumptions = field(default_factory=EnergyAssumptions)  # PUE and utilisation of the estimate


@dataclass
class Dependencies:
    """Everything the classifier service talks to (boto3-backed adapters in Lambda, fakes in tests)."""

    jobs: JobSource
    meter: MeterSource
    trail: TrailSource
    store: RecordStore
    publisher: Publisher
    metrics: MetricSink
    log: LogSink
    clock: Callable[[], datetime] = utcnow
    bedrock: BedrockSource | None = None  # None: Bedrock customization events are refused (permanent error)


@dataclass(frozen=True)
class ClassifyRequest:
    job_name: str
    eventbridge_event_id: str | None = None
    reconciled: bool = False
