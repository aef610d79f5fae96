"""Builds the service's dependencies from settings: boto3-backed adapters, created once per container."""

from __future__ import annotations

from flopsmeter.service.classifier import Dependencies, ServiceConfig
from lambdas.shared.observability import logger, metrics
from lambdas.shared.settings import Settings


def service_config(settings: Settings) -> ServiceConfig:
    return ServiceConfig(
        primary_policy=settings.PRIMARY_POLICY,
        approaching_fraction=settings.APPROACHING_FRACTION,
        cloudtrail_max_wait_seconds=settings.CLOUDTRAIL_MAX_WAIT_SECONDS,
        parent_max_wait_seconds=settings.CLOUDTRAIL_MAX_WAIT_SECONDS,
        alerts_enabled=settings.ALERT_TOPIC_ARN is not None,
    )


def aws_dependencies(settings: Settings) -> Dependencies:
    """Adapters over real boto3 clients (AWS, or the local emulator through AWS_ENDPOINT_URL)."""
    from flopsmeter.audit.store import AuditStore
    from flopsmeter.aws.clients import client
    from flopsmeter.aws.cloudtrail import CreateTrainingJobTrail
    from flopsmeter.aws.events import Notifier
    from flopsmeter.aws.metrics import JobMetrics
    from flopsmeter.aws.sagemaker import SageMakerJobs

    return Dependencies(
        jobs=SageMakerJobs(client("sagemaker")),
        meter=JobMetrics(client("cloudwatch")),
        trail=CreateTrainingJobTrail(client("cloudtrail")),
        store=AuditStore(client("s3"), settings.AUDIT_BUCKET_NAME, retention_years=settings.RETENTION_YEARS),
        publisher=Notifier(
            client("events"),
            client("sns") if settings.ALERT_TOPIC_ARN else None,
            bus_name=settings.EVENT_BUS_NAME,
            topic_arn=settings.ALERT_TOPIC_ARN,
        ),
        metrics=metrics,
        log=logger,
    )
