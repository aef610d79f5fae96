"""Hardware ceiling per SageMaker instance type."""

from __future__ import annotations

import math

import pytest

from flopsmeter.domain.hardware import INSTANCE_CATALOG, hardware_ceiling, lookup_instance


def test_p5_ceiling_is_chips_times_seconds_times_fp8_peak() -> None:
    ceiling = hardware_ceiling("ml.p5.48xlarge", 2, 3600)
    assert ceiling.known_instance and not ceiling.warnings
    assert ceiling.flops == pytest.approx(2 * 8 * 3600 * 1978.9e12)
    assert ceiling.bf16_flops == pytest.approx(2 * 8 * 3600 * 989.4e12)
    assert ceiling.precision == "fp8"


@pytest.mark.parametrize(
    "family",
    ["ml.p4d", "ml.p4de", "ml.p5", "ml.p5e", "ml.p5en", "ml.p6-b200", "ml.g5", "ml.g6", "ml.g6e", "ml.trn1",
     "ml.trn1n", "ml.trn2", "ml.p3", "ml.g4dn"],
)  # fmt: skip
def test_every_required_family_is_in_the_catalog(family: str) -> None:
    assert any(key.startswith(family + ".") for key in INSTANCE_CATALOG)


def test_instance_lookup_tolerates_missing_prefix_and_case() -> None:
    assert lookup_instance("P4D.24XLARGE") is INSTANCE_CATALOG["ml.p4d.24xlarge"]


def test_unknown_instance_type_warns_and_is_conservative_never_zero() -> None:
    ceiling = hardware_ceiling("ml.x99.mega", 1, 10)
    assert not ceiling.known_instance
    assert ceiling.warnings and "ml.x99.mega" in ceiling.warnings[0]
    fastest = max(hardware_ceiling(k, 1, 10).flops for k in INSTANCE_CATALOG)
    assert ceiling.flops >= fastest > 0


@pytest.mark.parametrize(("count", "seconds"), [(0, 10), (-1, 10), (1.5, 10), (True, 10), (1, -1), (1, math.nan),
                                                (1, math.inf), (1, "10")])  # fmt: skip
def test_invalid_count_or_seconds_is_rejected(count: object, seconds: object) -> None:
    with pytest.raises(ValueError):
        hardware_ceiling("ml.p5.48xlarge", count, seconds)  # type: ignore[arg-type]
