"""The meter's cumulative metrics of a job, read back from CloudWatch (maximum over the job's time window).

Cumulative FLOPs never fall within one run of the meter (a resume restores the totals). A fall in the series
therefore means the training process started again from zero (a managed-spot restart whose script did not resume
a checkpoint, a re-run inside the same job): the peaks before each fall are added, never lost. Each period's
Maximum and Minimum are read so that a restart inside one period is seen too; the period around a restart is
counted in both segments (an over-count of at most one period's value: the conservative side).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from flopsmeter import contract
from flopsmeter.aws.errors import translate
from flopsmeter.ports import MeteredFigures

MAX_POINTS = 100  # per query: the period grows with the window so a long job stays one small request
_QUERIES = {
    "flops": contract.METRIC_CUMULATIVE_FLOPS,
    "tokens": contract.METRIC_CUMULATIVE_TOKENS,
    "nonpad": contract.METRIC_CUMULATIVE_NON_PADDING_TOKENS,
    "recompute": contract.METRIC_RECOMPUTE_FLOPS,
    "incomplete": contract.METRIC_METER_INCOMPLETE,  # 1 when the meter knows its totals miss part of the job
}


def period_for(start: datetime, end: datetime) -> int:
    seconds = max(60.0, (end - start).total_seconds())
    return max(60, math.ceil(seconds / MAX_POINTS / 60) * 60)


class JobMetrics:
    def __init__(self, client: Any, *, namespace: str = contract.METRICS_NAMESPACE) -> None:
        self.client = client
        self.namespace = namespace

    def _query(self, query_id: str, metric: str, stat: str, job_name: str, period: int) -> dict[str, Any]:
        dimensions = [{"Name": contract.METRIC_DIMENSION, "Value": job_name}]
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {"Namespace": self.namespace, "MetricName": metric, "Dimensions": dimensions},
                "Period": period,
                "Stat": stat,
            },
            "ReturnData": True,
        }

    def job_metrics(self, job_name: str, start: datetime, end: datetime) -> MeteredFigures:
        period = period_for(start, end)
        queries = [self._query(query_id, metric, "Maximum", job_name, period) for query_id, metric in _QUERIES.items()]
        queries.append(self._query("flopsmin", contract.METRIC_CUMULATIVE_FLOPS, "Minimum", job_name, period))
        queries.append(self._query("crossed", contract.METRIC_THRESHOLD_CROSSED, "Maximum", job_name, period))
        values: dict[str, list[float]] = {query_id: [] for query_id in (*_QUERIES, "flopsmin", "crossed")}
        stamps: dict[str, list[datetime]] = {query_id: [] for query_id in ("flops", "flopsmin", "crossed")}
        try:
            for page in self.client.get_paginator("get_metric_data").paginate(
                MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampDescending"
            ):
                for result in page.get("MetricDataResults", []):
                    values[result["Id"]].extend(float(v) for v in result.get("Values", []))
                    if result["Id"] in stamps:
                        stamps[result["Id"]].extend(result.get("Timestamps", []))
        except (ClientError, BotoCoreError) as err:
            raise translate(err, f"GetMetricData {self.namespace}/{job_name}") from err
        flops, restarts = summed_segments(
            dict(zip(stamps["flops"], values["flops"], strict=False)),
            dict(zip(stamps["flopsmin"], values["flopsmin"], strict=False)),
        )
        return MeteredFigures(
            cumulative_flops=flops,
            tokens=_maximum(values["tokens"]),
            non_padding_tokens=_maximum(values["nonpad"]),
            recompute_flops=_maximum(values["recompute"]),
            datapoints=sum(len(v) for v in values.values()),
            meter_incomplete=_maximum(values["incomplete"]),
            restarts=restarts,
            threshold_crossed_at=_first(stamps["crossed"], values["crossed"]),
        )


def summed_segments(maxima: dict[datetime, float], minima: dict[datetime, float]) -> tuple[float | None, int]:
    """Cumulative FLOPs over the job and the number of restarts seen (falls in the cumulative series).

    ``maxima``/``minima`` map each period's timestamp to its Maximum/Minimum. Without a fall this is the plain
    maximum. NaN anywhere gives NaN and a negative value gives the most negative one (the service then ignores the
    metric and uses the ceiling; summing from 0 would have turned a lone negative datapoint into 0 FLOPs).
    """
    if not maxima:
        return None, 0
    if any(math.isnan(v) for v in (*maxima.values(), *minima.values())):
        return math.nan, 0
    negative = min((*maxima.values(), *minima.values()))
    if negative < 0:  # cumulative FLOPs cannot be negative: hand it on so the service ignores the metric (not 0)
        return negative, 0
    total, peak, previous, restarts = 0.0, 0.0, None, 0
    for stamp in sorted(maxima):
        high = maxima[stamp]
        low = minima.get(stamp, high)
        if previous is not None and (low < previous or high < previous):
            restarts += 1
            total += max(peak, high)  # the period of the restart may hold the old run's last values
            peak = high
        else:
            peak = max(peak, high)
        previous = high
    return total + peak, restarts


def _first(stamps: list[datetime], values: list[float]) -> datetime | None:
    """The earliest period in which the meter reported its crossing (a period starts at or before the crossing, so
    the due date derived from it is never late)."""
    crossed = [stamp for stamp, value in zip(stamps, values, strict=False) if not value < 1]  # 1, or NaN: crossed
    return min(crossed) if crossed else None


def _maximum(values: list[float]) -> float | None:
    """The largest value; NaN wins (so the service sees it and ignores the metric), None when there is none."""
    if not values:
        return None
    if any(math.isnan(v) for v in values):
        return math.nan
    return max(values)
