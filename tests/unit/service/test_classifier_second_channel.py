"""The classifier's second channel (issue 11, item 8): when the meter's CloudWatch series is missing, the last values
of its stdout metrics that SageMaker keeps in FinalMetricDataList are used before the hardware ceiling, and the record
says which channel its metered figure came from."""

from __future__ import annotations

import math

import pytest

from flopsmeter import contract
from flopsmeter.ports import MeteredFigures
from flopsmeter.service.classifier import classify_and_record
from flopsmeter.service.dependencies import ClassifyRequest
from flopsmeter.training.emitters import METRIC_DEFINITIONS

CEILING = 8 * 312e12 * 7200  # ml.p4d.24xlarge (8 x A100, dense BF16) for the fakes' default 2 hours
STDOUT = {
    contract.STDOUT_METRIC_CUMULATIVE_FLOPS: 2.5e18,
    contract.STDOUT_METRIC_TOKENS: 4_000_000,
    contract.STDOUT_METRIC_NON_PADDING_TOKENS: 3_500_000,
    contract.STDOUT_METRIC_METER_INCOMPLETE: 0,
}


def _classify(world, name: str, *, final: dict[str, float] | None, cloudwatch: MeteredFigures | None = None):
    world.jobs.add(name, final_metrics=final)
    world.trail.add(name)
    if cloudwatch is not None:
        world.meter.figures[name] = cloudwatch
    return classify_and_record(ClassifyRequest(name, "evt-1"), world.deps, world.config).record


def test_the_names_read_are_the_names_the_meter_defines():
    defined = {d["Name"] for d in METRIC_DEFINITIONS}
    read = {v for k, v in vars(contract).items() if k.startswith("STDOUT_METRIC_")}
    assert read <= defined and contract.STDOUT_METRIC_CUMULATIVE_FLOPS in read


def test_missing_cloudwatch_series_uses_final_metric_data_before_the_ceiling(world):
    record = _classify(world, "ft-no-creds", final=STDOUT)
    assert record.flops.method == "metered" and record.flops.classified_flops == 2.5e18
    assert record.flops.metered_channel == "final_metric_data"
    assert record.flops.tokens == 4_000_000 and record.flops.non_padding_tokens == 3_500_000
    assert any("FinalMetricDataList" in w for w in record.warnings)


def test_cloudwatch_wins_when_both_channels_have_the_figure(world):
    record = _classify(world, "ft-both", final=STDOUT, cloudwatch=MeteredFigures(cumulative_flops=3.0e18))
    assert record.flops.classified_flops == 3.0e18 and record.flops.metered_channel == "cloudwatch"
    assert not any("FinalMetricDataList" in w for w in record.warnings)


def test_neither_channel_falls_back_to_the_ceiling_with_no_channel(world):
    record = _classify(world, "ft-unmetered", final=None)
    assert record.flops.method == "hardware_ceiling" and record.flops.classified_flops == pytest.approx(CEILING)
    assert record.flops.metered is None and record.flops.metered_channel is None


def test_an_incomplete_flag_on_stdout_is_honoured(world):
    record = _classify(world, "ft-incomplete", final={**STDOUT, contract.STDOUT_METRIC_METER_INCOMPLETE: 1})
    assert record.flops.method == "hardware_ceiling" and record.flops.metered == 2.5e18
    assert record.flops.metered_channel == "final_metric_data"
    unmetered = _classify(world, "ft-unmeterable", final={contract.STDOUT_METRIC_METER_INCOMPLETE: 1})
    assert unmetered.flops.method == "hardware_ceiling" and unmetered.flops.metered is None


@pytest.mark.parametrize("absurd", [math.nan, -1.0, math.inf])
def test_an_absurd_stdout_figure_is_never_used(world, absurd):
    record = _classify(world, "ft-absurd", final={contract.STDOUT_METRIC_CUMULATIVE_FLOPS: absurd})
    assert record.flops.method == "hardware_ceiling" and record.flops.metered is None
