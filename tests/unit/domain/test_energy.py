"""Energy per job: board power x hours x utilisation x PUE; FLOPs-based when the instances are unknown."""

from __future__ import annotations

import math

import pytest

from flopsmeter.domain import hardware
from flopsmeter.domain.energy import (
    BOARD_POWER,
    DEFAULT_PUE,
    EnergyAssumptions,
    EnergyMethod,
    InvalidEnergyAssumption,
    energy_from_flops,
    energy_from_instances,
    format_kwh,
    lineage_kwh,
    two_significant,
)


def test_every_catalog_accelerator_has_a_sourced_board_power() -> None:
    names = {spec.accelerator.name for spec in hardware.INSTANCE_CATALOG.values()}
    assert names <= set(BOARD_POWER)
    assert all(p.watts > 0 and p.source for p in BOARD_POWER.values())


def test_p5_two_instances_ten_hours_is_chips_times_watts_times_hours_times_pue() -> None:
    estimate = energy_from_instances("ml.p5.48xlarge", 2, 36_000.0)
    assert estimate.method is EnergyMethod.BOARD_POWER
    assert estimate.accelerators == 16 and estimate.board_power_w == 700.0
    assert estimate.accelerator_kwh == pytest.approx(16 * 700 * 10 / 1000)  # 112 kWh
    assert estimate.kwh == pytest.approx(112 * DEFAULT_PUE)
    assert estimate.accelerator_hours == pytest.approx(160.0)
    assert "accelerators only" in estimate.uncertainty


def test_utilisation_and_pue_are_configurable() -> None:
    assumptions = EnergyAssumptions(pue=1.5, power_utilisation=0.5)
    estimate = energy_from_instances("ml.g5.xlarge", 1, 3600.0, assumptions)
    assert estimate.kwh == pytest.approx(0.3 * 0.5 * 1.5)


@pytest.mark.parametrize(
    "bad", [{"pue": 0.9}, {"pue": math.nan}, {"power_utilisation": 0.0}, {"model_flops_utilisation": 1.5}]
)
def test_bad_assumptions_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(InvalidEnergyAssumption):
        EnergyAssumptions(**bad)


def test_unknown_instance_type_assumes_the_largest_known_instance_and_says_so() -> None:
    estimate = energy_from_instances("ml.x99.mega", 1, 3600.0)
    assert estimate.kwh is not None and estimate.kwh > 0
    assert any("ml.x99.mega" in note for note in estimate.notes)


def test_zero_seconds_is_zero_energy_but_bad_durations_raise() -> None:
    assert energy_from_instances("ml.p5.48xlarge", 1, 0.0).kwh == 0.0
    for bad in (-1.0, math.inf):
        with pytest.raises(InvalidEnergyAssumption):
            energy_from_instances("ml.p5.48xlarge", 1, bad)


def test_estimated_job_energy_from_flops_on_the_reference_accelerator() -> None:
    flops = 989.4e12 * 0.5 * 3600 * 10  # ten H100-hours at 50 % utilisation
    estimate = energy_from_flops(flops)
    assert estimate.method is EnergyMethod.FLOPS_AT_UTILISATION
    assert estimate.accelerator_hours == pytest.approx(10.0)
    assert estimate.kwh == pytest.approx(10 * 0.7 * DEFAULT_PUE)
    assert "factor of two" in estimate.uncertainty


def test_unknown_flops_is_unknown_energy_never_zero() -> None:
    estimate = energy_from_flops(None)
    assert estimate.method is EnergyMethod.UNKNOWN and estimate.kwh is None and not estimate.known
    assert estimate.notes and "unknown" in estimate.notes[0]


def test_lineage_energy_adds_the_parent_and_stays_unknown_when_a_part_is() -> None:
    own = energy_from_instances("ml.p5.48xlarge", 1, 3600.0)
    assert lineage_kwh(None, own, has_parent=False) == own.kwh
    assert lineage_kwh(10.0, own, has_parent=True) == pytest.approx(10.0 + (own.kwh or 0))
    assert lineage_kwh(None, own, has_parent=True) is None
    assert lineage_kwh(10.0, energy_from_flops(None), has_parent=True) is None


@pytest.mark.parametrize(
    ("value", "text"), [(1234.0, "1,200"), (35.4, "35"), (0.01234, "0.012"), (99.6, "100"), (150.0, "150")]
)
def test_two_significant_figures(value: float, text: str) -> None:
    assert two_significant(value) == text


def test_format_kwh_unknown() -> None:
    assert format_kwh(None) == "unknown"
    assert format_kwh(1234.0) == "1,200 kWh"
