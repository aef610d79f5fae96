"""The meter's cumulative metrics of a job, read back from CloudWatch (maximum over the job's time window)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from flopsmeter import contract
from flopsmeter.aws.errors import translate
from flopsmeter.service.ports import MeteredFigures

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

    def job_metrics(self, job_name: str, start: datetime, end: datetime) -> MeteredFigures:
        period = period_for(start, end)
        queries = [
            {
                "Id": query_id,
                "MetricStat": {
                    "Metric": {
                        "Namespace": self.namespace,
                        "MetricName": metric,
                        "Dimensions": [{"Name": contract.METRIC_DIMENSION, "Value": job_name}],
                    },
                    "Period": period,
                    "Stat": "Maximum",
                },
                "ReturnData": True,
            }
            for query_id, metric in _QUERIES.items()
        ]
        values: dict[str, list[float]] = {query_id: [] for query_id in _QUERIES}
        try:
            for page in self.client.get_paginator("get_metric_data").paginate(
                MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampDescending"
            ):
                for result in page.get("MetricDataResults", []):
                    values[result["Id"]].extend(float(v) for v in result.get("Values", []))
        except (ClientError, BotoCoreError) as err:
            raise translate(err, f"GetMetricData {self.namespace}/{job_name}") from err
        return MeteredFigures(
            cumulative_flops=_maximum(values["flops"]),
            tokens=_maximum(values["tokens"]),
            non_padding_tokens=_maximum(values["nonpad"]),
            recompute_flops=_maximum(values["recompute"]),
            datapoints=sum(len(v) for v in values.values()),
            meter_incomplete=_maximum(values["incomplete"]),
        )


def _maximum(values: list[float]) -> float | None:
    """The largest value; NaN wins (so the service sees it and ignores the metric), None when there is none."""
    if not values:
        return None
    if any(math.isnan(v) for v in values):
        return math.nan
    return max(values)
