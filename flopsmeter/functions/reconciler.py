"""Reconciler function (scheduled): classifies every recently ended training job that has no audit record."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from flopsmeter.functions.container import ReconcilerContainer, build_reconciler
from flopsmeter.functions.context import InvocationContext
from flopsmeter.functions.observability import logger, metrics, tracer
from flopsmeter.functions.settings import ReconcilerSettings
from flopsmeter.service.reconcile import reconcile
from flopsmeter.service.rotation import RotationPlan, reconcile_accounts

Handler = Callable[[dict[str, Any], InvocationContext], dict[str, object]]


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
        if current.accounts is not None and current.rotation is not None:
            return reconcile_organization(current)
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


def reconcile_organization(current: ReconcilerContainer) -> dict[str, object]:
    """Organization mode: this run's share of the member accounts (``flopsmeter.service.rotation``)."""
    from flopsmeter.aws.organization import active_accounts

    assert current.accounts is not None and current.rotation is not None
    rotation = current.rotation
    plan = RotationPlan(
        accounts=rotation.accounts or active_accounts(rotation.organizations),
        regions=rotation.regions,
        jobs_per_account=rotation.jobs_per_account,
        accounts_per_run=rotation.accounts_per_run,
    )
    report = reconcile_accounts(
        current.accounts.deps_for,
        plan,
        rotation.cursor,
        current.config,
        lookback_hours=current.lookback_hours,
        log_deps=current.deps,
    ).as_dict()
    logger.info("organization reconcile finished", extra={k: v for k, v in report.items() if k != "recorded"})
    return report


lambda_handler = handler_for(process_container)
