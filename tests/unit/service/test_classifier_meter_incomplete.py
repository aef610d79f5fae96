"""A meter that reports MeterIncomplete is not trusted: the job is classified on its hardware ceiling."""

from __future__ import annotations

import math

import pytest

from flopsmeter.ports import MeteredFigures
from flopsmeter.service.classifier import classify_and_record
from flopsmeter.service.dependencies import ClassifyRequest

CEILING = 8 * 312e12 * 7200  # ml.p4d.24xlarge (8 x A100, dense BF16) for the fakes' default 2 hours


def _classify(world, name: str, figures: MeteredFigures):
    world.jobs.add(name)
    world.trail.add(name)
    world.meter.figures[name] = figures
    return classify_and_record(ClassifyRequest(name, "evt-1"), world.deps, world.config).record


@pytest.mark.parametrize("flag", [1.0, math.nan, -1.0, 0.5])
def test_incomplete_meter_is_classified_on_its_ceiling_and_keeps_the_metered_figure(world, flag):
    record = _classify(world, "ft-resumed", MeteredFigures(cumulative_flops=1.0e18, meter_incomplete=flag))
    assert record.flops.method == "hardware_ceiling"
    assert record.flops.classified_flops == pytest.approx(CEILING)
    assert record.lineage.own_flops == pytest.approx(CEILING)
    assert record.flops.metered == 1.0e18  # kept in the record, not used
    (why,) = [w for w in record.warnings if "MeterIncomplete" in w]
    assert "not trusted" in why and "1.00e+18" in why and "hardware ceiling" in why


def test_a_zero_flag_leaves_the_metered_figure_in_charge(world):
    record = _classify(world, "ft-complete", MeteredFigures(cumulative_flops=1.0e18, meter_incomplete=0.0))
    assert record.flops.method == "metered" and record.flops.classified_flops == 1.0e18
    assert not any("MeterIncomplete" in w for w in record.warnings)


def test_an_incomplete_figure_above_the_ceiling_is_never_lowered_to_it(world):
    record = _classify(world, "ft-over", MeteredFigures(cumulative_flops=5.0e19, meter_incomplete=1.0))
    assert record.flops.method == "metered" and record.flops.classified_flops == 5.0e19
    assert any("exceeds the hardware ceiling" in w for w in record.warnings)


def test_an_unmetered_job_that_says_so_gets_the_ceiling_and_a_reason(world):
    record = _classify(world, "ft-unmetered", MeteredFigures(meter_incomplete=1.0))
    assert record.flops.method == "hardware_ceiling" and record.flops.metered is None
    assert any("could not meter" in w for w in record.warnings)


def test_a_restarted_series_is_classified_on_the_summed_runs_and_says_so(world):
    record = _classify(world, "ft-restarted", MeteredFigures(cumulative_flops=1.7e18, restarts=1))
    assert record.flops.method == "metered" and record.flops.classified_flops == 1.7e18
    (why,) = [w for w in record.warnings if "fell" in w]
    assert "1 time(s)" in why and "added" in why
