"""Each function's dependencies, built explicitly from its settings into one container.

Lambda builds a container once per execution environment (``flopsmeter.functions.<fn>.lambda_handler`` does it at
the first invocation, from the environment); the local runner and tests build their own with ``build_*`` and a
client factory aimed at the emulator or moto, and hand it to ``handler_for``. Nothing is cached behind a getter
that would have to be cleared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flopsmeter.functions.settings import (
    ClassificationSettings,
    ClassifierSettings,
    DigestSettings,
    FunctionSettings,
    ReconcilerSettings,
)
from flopsmeter.service.ports import Dependencies, LogSink, MetricSink, ServiceConfig

if TYPE_CHECKING:
    from flopsmeter.aws.dead_letters import DeadLetterQueue
    from flopsmeter.aws.store import AuditStore

ClientFactory = Callable[[str], Any]  # service name -> boto3 client


def aws_client(service: str) -> Any:
    """The production client factory (``flopsmeter.aws.clients``: retries, timeouts, ``AWS_ENDPOINT_URL``)."""
    from flopsmeter.aws.clients import client

    return client(service)


@dataclass(frozen=True)
class ClassifierContainer:
    deps: Dependencies
    config: ServiceConfig
    dead_letters: DeadLetterQueue | None  # None: DEAD_LETTER_QUEUE_URL unset, failures go by the redrive policy


@dataclass(frozen=True)
class ReconcilerContainer:
    deps: Dependencies
    config: ServiceConfig
    lookback_hours: int


@dataclass(frozen=True)
class DigestContainer:
    store: AuditStore
    kms: Any  # a boto3 KMS client; flopsmeter.service.digests wraps it in a KmsSigner
    signing_key_id: str


@dataclass(frozen=True)
class ProvenanceContainer:
    store: AuditStore


def audit_store(
    settings: ClassificationSettings | DigestSettings | FunctionSettings, clients: ClientFactory
) -> AuditStore:
    from flopsmeter.aws.store import AuditStore

    return AuditStore(clients("s3"), settings.AUDIT_BUCKET_NAME, retention_years=settings.RETENTION_YEARS)


def classification_dependencies(
    settings: ClassificationSettings, clients: ClientFactory, *, metrics: MetricSink, log: LogSink
) -> Dependencies:
    """The classifier service's adapters over boto3 clients from ``clients``."""
    from flopsmeter.aws.bedrock import BedrockJobs
    from flopsmeter.aws.cloudtrail import CreateTrainingJobTrail
    from flopsmeter.aws.events import Notifier
    from flopsmeter.aws.metrics import JobMetrics
    from flopsmeter.aws.sagemaker import SageMakerJobs

    return Dependencies(
        jobs=SageMakerJobs(clients("sagemaker")),
        meter=JobMetrics(clients("cloudwatch")),
        trail=CreateTrainingJobTrail(clients("cloudtrail")),
        store=audit_store(settings, clients),
        publisher=Notifier(
            clients("events"),
            clients("sns") if settings.ALERT_TOPIC_ARN else None,
            bus_name=settings.EVENT_BUS_NAME,
            topic_arn=settings.ALERT_TOPIC_ARN,
        ),
        metrics=metrics,
        log=log,
        bedrock=BedrockJobs(clients("bedrock"), clients("cloudtrail")),
    )


def build_classifier(
    settings: ClassifierSettings, clients: ClientFactory = aws_client, *, metrics: MetricSink, log: LogSink
) -> ClassifierContainer:
    from flopsmeter.aws.dead_letters import DeadLetterQueue

    url = settings.DEAD_LETTER_QUEUE_URL
    return ClassifierContainer(
        deps=classification_dependencies(settings, clients, metrics=metrics, log=log),
        config=settings.service_config(),
        dead_letters=DeadLetterQueue(clients("sqs"), url) if url else None,
    )


def build_reconciler(
    settings: ReconcilerSettings, clients: ClientFactory = aws_client, *, metrics: MetricSink, log: LogSink
) -> ReconcilerContainer:
    return ReconcilerContainer(
        deps=classification_dependencies(settings, clients, metrics=metrics, log=log),
        config=settings.service_config(),
        lookback_hours=settings.RECONCILE_LOOKBACK_HOURS,
    )


def build_digest(settings: DigestSettings, clients: ClientFactory = aws_client) -> DigestContainer:
    return DigestContainer(audit_store(settings, clients), clients("kms"), settings.DIGEST_SIGNING_KEY_ID)


def build_provenance(settings: FunctionSettings, clients: ClientFactory = aws_client) -> ProvenanceContainer:
    return ProvenanceContainer(audit_store(settings, clients))
