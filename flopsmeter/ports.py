"""What the use cases (``flopsmeter.service``) talk to, as small protocols, and the plain values that cross them.

This floor sits below both sides: the AWS adapters (``flopsmeter.aws``) satisfy these protocols structurally and
return these values, the service and the compliance tools accept them, tests hand in fakes. Adapters raise only
``flopsmeter.errors`` types (``TransientError`` / ``PermanentError`` and their subclasses), never botocore's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from flopsmeter.audit.record import AuditRecord
from flopsmeter.domain.hyperpod import ClusterInventory

# --- values -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PutResult:
    """What writing a record did (``RecordStore.put_record``)."""

    key: str
    written: bool  # False: an object already existed at the key (duplicate delivery), nothing changed
    version_id: str | None
    sha256: str
    retain_until: datetime | None


@dataclass(frozen=True)
class StoredObject:
    key: str
    body: bytes
    version_id: str | None
    last_modified: datetime | None


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
    """The CloudTrail event of the call that created a job (or its parent)."""

    event_id: str
    event_time: datetime | None
    principal_arn: str | None
    source_ip: str | None
    user_agent: str | None


@dataclass(frozen=True)
class LaunchCall:
    """One successful SageMaker launch call, from the "AWS API Call via CloudTrail" event that delivered it (the edge
    model checked its event source and name, and that it carries no error code). Identity, request and response are
    as CloudTrail wrote them: the service reads them leniently."""

    event_name: str
    event_id: str
    event_time: datetime | None
    identity: Mapping[str, Any]
    source_ip: object
    user_agent: object
    request: object  # requestParameters
    response: Mapping[str, Any]  # responseElements


# --- the facts of a job -------------------------------------------------------------------------------------------


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


class SessionSource(Protocol):
    """SageMaker training sessions (issue 26 item 1): ``flopsmeter.aws.training_sessions.TrainingSessions``."""

    def describe_session(self, name: str) -> Mapping[str, Any]:
        """DescribeTrainingSession's ``TrainingSessionDetail``; raises ``JobNotFound`` for an unknown session."""
        ...

    def sessions(self, statuses: tuple[str, ...], since: datetime | None = None) -> Iterator[Mapping[str, Any]]:
        """ListTrainingSessions summaries in ``statuses`` (created after ``since`` when given)."""
        ...

    def checkpoints(self, group_arn: str, start: datetime, end: datetime) -> list[str]:
        """ARNs of the model package versions created in ``group_arn`` between ``start`` and ``end``."""
        ...


class BatchSource(Protocol):
    """AWS Batch service jobs (issue 26 item 2): ``flopsmeter.aws.batch.BatchServiceJobs``."""

    def describe_service_job(self, job_id: str) -> Mapping[str, Any]:
        """DescribeServiceJob; raises ``JobNotFound`` for an unknown job."""

    def sagemaker_training_queues(self) -> list[str]:
        """The ARNs of the job queues of type SAGEMAKER_TRAINING (DescribeJobQueues)."""
        ...

    def service_jobs(self, queue: str, status: str) -> Iterator[Mapping[str, Any]]:
        """ListServiceJobs summaries of one queue in one status."""
        ...


class ClusterSource(Protocol):
    """SageMaker HyperPod clusters and the IAM roles that report for them (issue 26): ``flopsmeter.aws.hyperpod``."""

    def cluster(self, name: str) -> ClusterInventory:
        """DescribeCluster + ListClusterNodes; raises ``ClusterNotFound`` for an unknown cluster."""
        ...

    def cluster_names(self) -> list[str]:
        """ListClusters: every cluster's name."""
        ...

    def role(self, name: str) -> tuple[str, dict[str, str]]:
        """IAM GetRole: (RoleId, tags); raises ``RoleNotFound`` for an unknown role."""
        ...


# --- the audit bucket ---------------------------------------------------------------------------------------------


class IndexStore(Protocol):
    """Immutable objects by key: what the lineage index and the provenance capture need of the audit bucket.

    Failures raise ``AuditStoreError`` (``TransientStoreError`` / ``PermanentStoreError``)."""

    def exists(self, key: str) -> bool: ...

    def get(self, key: str) -> StoredObject: ...

    def list_keys(self, prefix: str) -> Iterator[dict[str, Any]]: ...

    def put_immutable(
        self, key: str, body: bytes, *, content_type: str = ..., metadata: dict[str, str] | None = ...
    ) -> tuple[bool, str | None, datetime]: ...


class RecordStore(IndexStore, Protocol):
    """The subset of ``flopsmeter.aws.store.AuditStore`` the classifier service uses."""

    bucket: str

    def put_record(self, key: str, record: AuditRecord) -> PutResult: ...

    def get_record(self, key: str) -> AuditRecord: ...

    def get_if_exists(self, key: str) -> StoredObject | None: ...


class DigestStore(Protocol):
    """What the digest writer reads and writes: listings, object versions, immutable writes."""

    def exists(self, key: str) -> bool: ...

    def get(self, key: str, version_id: str | None = None) -> StoredObject: ...

    def list_keys(self, prefix: str) -> Iterator[dict[str, Any]]: ...

    def list_versions(self, prefix: str) -> Iterator[dict[str, Any]]: ...

    def put_immutable(
        self, key: str, body: bytes, *, content_type: str = ..., metadata: dict[str, str] | None = ...
    ) -> tuple[bool, str | None, datetime]: ...


class PartitionCatalog(Protocol):
    """Where the catalog points the compacted table's partitions (``flopsmeter.aws.glue_catalog.GlueCatalog``).

    Partitions are ``(account, region, YYYY-MM-DD)``; a partition the catalog does not have is absent from the
    answer. Failures raise ``CatalogError``."""

    @property
    def name(self) -> str: ...

    def locations(self, partitions: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str, str], str]: ...

    def served(self) -> dict[tuple[str, str, str], str]: ...


# --- what the service tells the world -----------------------------------------------------------------------------


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
class RotationState:
    """Where the reconciler's round-robin resumes: the index of the next account, and the accounts whose visit failed
    in the last run (their job listing refused, throttled or timed out), visited again first."""

    next: int = 0
    retry: tuple[str, ...] = ()


class Cursor(Protocol):
    """Where the reconciler's round-robin over member accounts resumes (``flopsmeter.aws.cursor``)."""

    def load(self) -> RotationState: ...

    def save(self, state: RotationState) -> None: ...
