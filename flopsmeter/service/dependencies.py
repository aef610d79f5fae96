"""What the classifier service is handed: its ports bundled (``Dependencies``), its settings (``ServiceConfig``)
and one request (``ClassifyRequest``).

The Lambda handlers build ``Dependencies`` from boto3-backed adapters (``flopsmeter.aws``); tests hand in fakes.
The protocols themselves live one floor down, in ``flopsmeter.ports``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from flopsmeter.domain.energy import EnergyAssumptions
from flopsmeter.domain.thresholds import DEFAULT_APPROACHING_FRACTION, DEFAULT_PRIMARY_POLICY
from flopsmeter.domain.times import utcnow
from flopsmeter.ports import (
    BatchSource,
    BedrockSource,
    JobSource,
    LogSink,
    MeterSource,
    MetricSink,
    Publisher,
    RecordStore,
    SessionSource,
    TrailSource,
)


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
    sessions: SessionSource | None = None  # None: training-session calls are refused (permanent error)
    batch: BatchSource | None = None  # None: Batch service-job events are refused (permanent error)


@dataclass(frozen=True)
class ClassifyRequest:
    job_name: str
    eventbridge_event_id: str | None = None
    reconciled: bool = False
    arn: str | None = None  # issue 26: a training session's ARN, when the event names it (a deleted one's assessments)
