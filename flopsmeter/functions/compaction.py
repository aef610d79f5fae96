"""Compaction function (EventBridge schedule, every six hours): copies settled days of records into Parquet.

The body is ``flopsmeter.compliance.compaction.athena.compact_with_athena`` (Athena ``UNLOAD`` to a staging prefix
of the results bucket, a write-once copy into the audit bucket, a write-once manifest, the compacted table's
partition pointed at it). Idempotent: a retry or the next run finds finished partitions up to date, and points the
compacted table at any partition a stopped run left unregistered or on an older generation. It stops
starting partitions two minutes before the Lambda timeout; what it left is logged and counted, and the next run
takes it up. A partition it refuses (records gone since its last compaction) fails the run, so the Errors alarm
fires: that is for ``flopsmeter verify`` and a person, not for compaction to paper over.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from flopsmeter.contract import ServiceMetric
from flopsmeter.functions.container import CompactionContainer, build_compaction
from flopsmeter.functions.context import InvocationContext
from flopsmeter.functions.observability import logger, metrics, tracer
from flopsmeter.functions.schedule import scheduled_time
from flopsmeter.functions.settings import CompactorSettings

Handler = Callable[[dict[str, Any], InvocationContext], dict[str, object]]


class CompactionRefused(RuntimeError):
    """Some partition was not compacted for a reason a person must look at (listed in the message)."""


@functools.cache
def process_container() -> CompactionContainer:
    """This execution environment's container: settings validated and clients built once, at the first invocation."""
    return build_compaction(CompactorSettings.from_env())


def handler_for(container: Callable[[], CompactionContainer]) -> Handler:
    """The Lambda entry point over the container ``container()`` returns (tests pass theirs)."""

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics(capture_cold_start_metric=True)
    @tracer.capture_lambda_handler(capture_response=False)
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
        from flopsmeter.compliance.compaction.athena import compact_with_athena

        current = container()
        run = compact_with_athena(
            current.run_sql,
            current.store,
            current.staging,
            current.settings,
            catalog=current.catalog,
            now=scheduled_time(event),
            time_left=lambda: context.get_remaining_time_in_millis() / 1000,
        )
        written = run.written
        metrics.add_metric(name=ServiceMetric.PARTITIONS_COMPACTED, unit="Count", value=len(written))
        metrics.add_metric(name=ServiceMetric.COMPACTION_DEFERRED, unit="Count", value=len(run.deferred))
        for result in written:
            logger.info(
                "partition compacted",
                extra={"partition": result.partition.path, "generation": result.generation, "rows": result.rows},
            )
        repointed = [r.partition.path for r in run.results if r.repointed]
        if repointed:  # an earlier run wrote the manifest but stopped before ALTER TABLE
            logger.warning("partition pointed at its newest generation", extra={"partitions": repointed})
        if run.deferred:
            logger.warning("left for the next run (time budget)", extra={"deferred": run.deferred})
        summary: dict[str, object] = {
            "compacted": [r.partition.path for r in written],
            "records": sum(r.rows for r in written),
            "up_to_date": len(run.results) - len(written),
            "repointed": repointed,
            "deferred": run.deferred,
        }
        if run.errors:
            for partition, why in run.errors:
                logger.error("partition not compacted", extra={"partition": partition, "reason": why})
            raise CompactionRefused(f"{len(run.errors)} partition(s) not compacted: {run.errors[:5]}")
        return summary

    entry: Handler = lambda_handler  # the decorators are untyped
    return entry


lambda_handler = handler_for(process_container)
