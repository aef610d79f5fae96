"""Reconciler Lambda (scheduled): classifies every recently ended training job that has no audit record."""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from flopsmeter.service.classifier import Dependencies, ServiceConfig
from flopsmeter.service.reconcile import reconcile
from lambdas.shared.observability import logger, metrics, tracer
from lambdas.shared.settings import Settings, settings


@functools.cache
def dependencies() -> tuple[Dependencies, ServiceConfig, Settings]:
    from lambdas.shared.wiring import aws_dependencies, service_config

    current = settings()
    return aws_dependencies(current), service_config(current), current


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
    deps, config, current = dependencies()
    report = reconcile(deps, config, lookback_hours=current.RECONCILE_LOOKBACK_HOURS)
    logger.info(
        "reconcile finished",
        extra={
            "seen": report.seen,
            "already_recorded": report.already_recorded,
            "recorded": len(report.recorded),
            "deferred": len(report.deferred),
            "failed": len(report.failed),
        },
    )
    return report.as_dict()
