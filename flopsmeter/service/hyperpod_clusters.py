"""Every HyperPod cluster's day, compared with what its jobs reported (issue 26 point 3), so that compute no meter
reported is a recorded gap rather than an absence.

For each cluster ListClusters names: the ceiling of the day (every node ListClusterNodes lists, from its launch, x its
chips x their dense peak), the reported jobs' share of the day (their records under ``records/``, ``hyperpod.<cluster>
.<job>.json``, from the day's partition up to today's: a job overlapping the day ended on it or later), and the gap.
One ``ClusterPeriodRecord`` per cluster and day, written once (Object Lock, ``If-None-Match``), and the gap as the
``ClusterUnreportedFlops`` metric. A day is compared once it is over; the scheduled pass compares yesterday.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from flopsmeter.audit.cluster_record import ClusterPeriodRecord
from flopsmeter.audit.keys import HYPERPOD_RECORD_PREFIX, cluster_period_key, records_prefix, valid_cluster_name
from flopsmeter.contract import ServiceMetric
from flopsmeter.domain.hyperpod import ClusterInventory, ReportedShare, cluster_period
from flopsmeter.ports import ClusterSource, LogSink, MetricSink, RecordStore

MAX_LOOKAHEAD_DAYS = 31  # partitions after the day searched for jobs that overlapped it (a longer job is a gap)
STILL_RUNNING = (
    "a job still running when the day was compared has not reported yet: its share of the day is in the gap (it "
    f"appears in its own record when it ends; jobs longer than {MAX_LOOKAHEAD_DAYS} days are not looked for)"
)


@dataclass(frozen=True)
class ClusterDay:
    key: str
    record: ClusterPeriodRecord
    written: bool


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def reported_jobs(
    store: RecordStore, account_id: str, region: str, cluster: str, day: date, today: date
) -> list[ReportedShare]:
    """The cluster's reported jobs that ended on ``day`` or later (up to ``today``), from their records."""
    found: list[ReportedShare] = []
    prefix_name = f"{HYPERPOD_RECORD_PREFIX}{cluster}."
    last = min(today, day + timedelta(days=MAX_LOOKAHEAD_DAYS))
    current = day
    while current <= last:
        for item in store.list_keys(records_prefix(account_id, region, current)):
            if not item["Key"].rsplit("/", 1)[-1].startswith(prefix_name):
                continue
            record = store.get_record(item["Key"])
            start = record.job.start_time or record.job.end_time
            found.append(ReportedShare(record.job.name, start, record.job.end_time, record.flops.classified_flops,
                                       item["Key"]))  # fmt: skip
        current += timedelta(days=1)
    return found


def compare_cluster(
    inventory: ClusterInventory, store: RecordStore, *, account_id: str, region: str, day: date, now: datetime
) -> ClusterDay:
    start, end = day_bounds(day)
    jobs = reported_jobs(store, account_id, region, inventory.name, day, now.date())
    period = cluster_period(inventory, tuple(jobs), start, end)
    record = ClusterPeriodRecord.from_period(
        period, account_id=account_id, region=region, arn=inventory.arn, orchestrator=inventory.orchestrator, now=now
    )
    if period.gap_flops > 0:
        record = record.model_copy(update={"warnings": [*record.warnings, STILL_RUNNING]}).sealed()
    key = cluster_period_key(account_id, region, day, inventory.name)
    written, _, _ = store.put_immutable(key, record.to_json_bytes())
    return ClusterDay(key, record, written)


def compare_clusters(
    clusters: ClusterSource,
    store: RecordStore,
    *,
    account_id: str,
    region: str,
    day: date,
    now: datetime,
    metrics: MetricSink,
    log: LogSink,
) -> list[ClusterDay]:
    """Compare every cluster of one account and region for ``day`` (which must be over)."""
    if day_bounds(day)[1] > now:
        raise ValueError(f"{day.isoformat()} is not over yet: a day is compared once it has ended")
    results: list[ClusterDay] = []
    for name in clusters.cluster_names():
        if not valid_cluster_name(name):
            log.warning("cluster name not usable in a key; skipped", extra={"cluster": name[:80]})
            continue
        result = compare_cluster(clusters.cluster(name), store, account_id=account_id, region=region, day=day, now=now)
        metrics.add_metric(ServiceMetric.CLUSTER_UNREPORTED_FLOPS, "None", result.record.unreported_flops)
        log.info(
            "cluster period compared",
            extra={
                "cluster": name,
                "day": day.isoformat(),
                "ceiling_flops": result.record.ceiling_flops,
                "reported_flops": result.record.reported_flops,
                "unreported_flops": result.record.unreported_flops,
                "written": result.written,
            },
        )
        results.append(result)
    return results
