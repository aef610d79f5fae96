"""Cumulative FLOPs across restarts: a fall in the meter's series means the process started again from zero."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import boto3
from moto import mock_aws

from flopsmeter import contract
from flopsmeter.aws.metrics import JobMetrics, summed_segments

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _series(values: list[float]) -> dict[datetime, float]:
    return {T0 + timedelta(minutes=i): v for i, v in enumerate(values)}


def test_a_monotone_series_is_its_maximum():
    series = _series([1.0, 5.0, 9.0, 9.0, 12.0])
    assert summed_segments(series, series) == (12.0, 0)


def test_a_fall_between_periods_adds_the_earlier_peak():
    # run 1 reaches 100, the process restarts from zero and reaches 70: 170 FLOPs were spent
    series = _series([40.0, 100.0, 20.0, 70.0])
    assert summed_segments(series, series) == (170.0, 1)


def test_a_restart_inside_one_period_is_seen_through_the_minimum():
    # period 2 holds run 1's last value (100) and run 2's first (5); period 3 run 2 goes on to 130 (> 100)
    maxima = _series([40.0, 100.0, 130.0])
    minima = _series([40.0, 5.0, 110.0])
    total, restarts = summed_segments(maxima, minima)
    assert restarts == 1
    assert total >= 100.0 + 130.0  # never less than both runs' peaks


def test_no_datapoints_and_nan():
    assert summed_segments({}, {}) == (None, 0)
    total, _ = summed_segments(_series([1.0, math.nan]), _series([1.0, 1.0]))
    assert math.isnan(total)


def test_job_metrics_sums_runs_from_cloudwatch():
    """Emulated: moto's CloudWatch stores the points and answers GetMetricData with Maximum and Minimum."""
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
        dims = [{"Name": contract.METRIC_DIMENSION, "Value": "job-restarted"}]
        for minute, value in enumerate([2e18, 6e18, 1e18, 4e18]):
            cloudwatch.put_metric_data(
                Namespace=contract.METRICS_NAMESPACE,
                MetricData=[{"MetricName": contract.METRIC_CUMULATIVE_FLOPS, "Dimensions": dims, "Value": value,
                             "Timestamp": T0 + timedelta(minutes=minute, seconds=30)}],
            )  # fmt: skip
        figures = JobMetrics(cloudwatch).job_metrics("job-restarted", T0, T0 + timedelta(minutes=10))
    assert figures.restarts == 1
    assert figures.cumulative_flops == 1e19
