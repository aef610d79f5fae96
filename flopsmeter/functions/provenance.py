"""Provenance function: an EventBridge rule on "AWS API Call via CloudTrail" (``contract.training_launch_pattern``)
invokes it asynchronously with one launch call; it parses it (``flopsmeter.functions.inbound.LaunchCall``) and
stores that call's provenance once, by key (``flopsmeter.service.provenance.capture_launch``).

A transient failure (S3 throttled) raises, so Lambda retries the asynchronous invocation; an event that is not a
successful launch call is logged and dropped (the rule should not have sent it). A launch whose capture is lost
costs nothing but speed: the classifier falls back to CloudTrail's LookupEvents.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from flopsmeter.contract import ServiceMetric
from flopsmeter.errors import MalformedEvent
from flopsmeter.functions.container import ProvenanceContainer, build_provenance
from flopsmeter.functions.context import InvocationContext
from flopsmeter.functions.inbound import LaunchCall, parse_inbound
from flopsmeter.functions.observability import logger, metrics, tracer
from flopsmeter.functions.settings import FunctionSettings

Handler = Callable[[dict[str, Any], InvocationContext], dict[str, object]]


@functools.cache
def process_container() -> ProvenanceContainer:
    """This execution environment's container: settings validated and clients built once, at the first invocation."""
    return build_provenance(FunctionSettings.from_env())


def handler_for(container: Callable[[], ProvenanceContainer]) -> Handler:
    """The Lambda entry point over the container ``container()`` returns (the local runner and tests pass theirs)."""

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics(capture_cold_start_metric=True)
    @tracer.capture_lambda_handler(capture_response=False)
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
        from flopsmeter.service.provenance import capture_launch

        try:
            launch: LaunchCall = parse_inbound(event, accept=(LaunchCall,))
            result = capture_launch(launch.to_call(), container().store)
        except MalformedEvent as err:
            logger.warning("not a launch call; dropped", extra={"reason": str(err)[:300]})
            metrics.add_metric(name=ServiceMetric.MALFORMED_EVENT, unit="Count", value=1)
            return {"captured": False, "reason": str(err)[:300]}
        if result.written:
            metrics.add_metric(name=ServiceMetric.PROVENANCE_CAPTURED, unit="Count", value=1)
        logger.info(
            "provenance captured" if result.written else "provenance already captured",
            extra={"key": result.key, "event_id": result.provenance.event_id},
        )
        return {"captured": result.written, "key": result.key}

    entry: Handler = lambda_handler  # the decorators are untyped
    return entry


lambda_handler = handler_for(process_container)
