"""Digest function (hourly EventBridge schedule): writes the signed, hash-chained digest of the previous hour.

The hour comes from the scheduled event's ``time`` (so a retry of the same invocation closes the same hour),
the account and region from the event too. Idempotent: a digest already written is left alone, and hours a
failed run missed are written first, oldest first, so the chain has no gap.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from flopsmeter.contract import ServiceMetric
from flopsmeter.functions.container import DigestContainer, build_digest
from flopsmeter.functions.context import InvocationContext
from flopsmeter.functions.observability import logger, metrics, tracer
from flopsmeter.functions.schedule import scheduled_time
from flopsmeter.functions.settings import DigestSettings

Handler = Callable[[dict[str, Any], InvocationContext], dict[str, object]]


@functools.cache
def process_container() -> DigestContainer:
    """This execution environment's container: settings validated and clients built once, at the first invocation."""
    return build_digest(DigestSettings.from_env())


def hour_to_close(event: dict[str, Any], now: datetime | None = None) -> datetime:
    """The hour before the scheduled time (event ``time``), or before now for a manual invocation."""
    moment = scheduled_time(event) or (now or datetime.now(UTC))
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def account_and_region(event: dict[str, Any], context: LambdaContext | None) -> tuple[str, str]:
    if event.get("account") and event.get("region"):
        return str(event["account"]), str(event["region"])
    arn = str(getattr(context, "invoked_function_arn", ""))  # arn:aws:lambda:<region>:<account>:function:<name>
    parts = arn.split(":")
    if len(parts) < 5:
        raise ValueError("cannot tell the account and region: no event account/region and no function ARN")
    return parts[4], parts[3]


def handler_for(container: Callable[[], DigestContainer]) -> Handler:
    """The Lambda entry point over the container ``container()`` returns (the local runner and tests pass theirs)."""

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics(capture_cold_start_metric=True)
    @tracer.capture_lambda_handler(capture_response=False)
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
        from flopsmeter.aws.kms import KmsSigner
        from flopsmeter.service.digests import write_digest

        current = container()
        hour = hour_to_close(event)
        account, region = account_and_region(event, context)
        results = write_digest(
            current.store,
            KmsSigner(current.kms, current.signing_key_id),
            hour,
            account_id=account,
            region=region,
        )
        written = [r for r in results if r.written]
        metrics.add_metric(name=ServiceMetric.DIGESTS_WRITTEN, unit="Count", value=len(written))
        for result in written:
            logger.info(
                "digest written", extra={"key": result.key, "records": result.record_count, "sha256": result.sha256}
            )
        if not written:
            logger.info("digest already present", extra={"hour": hour.isoformat()})
        return {
            "hour": hour.isoformat(),
            "written": [r.key for r in written],
            "records": sum(r.record_count for r in written),
        }

    entry: Handler = lambda_handler  # the decorators are untyped
    return entry


lambda_handler = handler_for(process_container)
