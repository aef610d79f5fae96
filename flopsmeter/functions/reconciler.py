"""Reconciler function (scheduled): classifies every recently ended training job that has no audit record."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from flopsmeter.functions.container import ReconcilerContainer, build_reconciler
from flopsmeter.functions.observability import logger, metrics, tracer
from flopsmeter.functions.settings import ReconcilerSettings
from flopsmeter.service.reconcile import reconcile

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, object]]


@functools.cache
def process_container() -> ReconcilerContainer:
    """This execution environment's container: settings validated and clients built once, at the first invocation."""
    return build_reconciler(ReconcilerSettings.from_env(), metrics=metrics, log=logger)


def handler_for(container: Callable[[], ReconcilerContainer]) -> Handler:
    """The Lambda entry point over the container ``container()`` returns (the local runner and tests pass theirs)."""

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics(capture_cold_start_metric=True)
    @tracer.capture_lambda_handler(capture_response=False)
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
        current = container()
        report = reconcile(current.deps, current.config, lookback_hours=current.lookback_hours)
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

    entry: Handler = lambda_handler  # the decorators are untyped
    return entry


lambda_handler = handler_for(process_container)
