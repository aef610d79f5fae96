"""Hardware ceiling, base-model catalog, and monotonicity of the classification."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flopsmeter.domain.catalog import BASE_MODELS, find_base_model
from flopsmeter.domain.classification import classify
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


def test_catalog_keeps_every_estimate_and_uses_the_lowest() -> None:
    for model in BASE_MODELS:
        if model.estimates:
            assert model.pretrain_flops == min(e.flops for e in model.estimates)
            assert all(e.source for e in model.estimates)
    llama = find_base_model("meta-llama/Meta-Llama-3-70B")
    assert llama is not None and len(llama.estimates) == 3
    assert llama.used_estimate is not None and llama.used_estimate.method == "published"


def test_catalog_lookup_by_alias_short_name_and_case() -> None:
    model = find_base_model("meta-llama/Llama-3.1-8B")
    assert find_base_model("llama-3.1-8b") is model
    assert find_base_model("LLAMA-3.1-8B") is model
    assert find_base_model("someone/Llama-3.1-8B") is model
    assert find_base_model("no-such-model") is None
    assert find_base_model(None) is None


def test_systemic_catalog_model_gets_systemic_threshold() -> None:
    model = find_base_model("llama-3.1-405b")
    assert model is not None and model.systemic_risk
    assert model.pretrain_flops == pytest.approx(6 * 405e9 * 15.6e12)  # 6ND 3.79e25 is below Meta's 3.8e25
    result = classify(1e24, model.pretrain_flops, systemic_risk_base=model.systemic_risk)
    assert result.primary.threshold == 3.3e24 and result.primary.scenario == "systemic"


flops_values = st.floats(min_value=0, max_value=1e27, allow_nan=False, allow_infinity=False)
pretrains = st.one_of(st.none(), st.floats(min_value=1e20, max_value=1e27))


@settings(max_examples=200, deadline=None)
@given(flops_values, flops_values, pretrains, st.booleans())
def test_classification_is_monotone_in_flops(a: float, b: float, pretrain: float | None, systemic: bool) -> None:
    low, high = sorted((a, b))
    lower = classify(low, pretrain, systemic_risk_base=systemic)
    higher = classify(high, pretrain, systemic_risk_base=systemic)
    for lo, hi in zip(lower.results, higher.results, strict=True):
        assert lo.threshold == hi.threshold
        assert lo.outcome.severity <= hi.outcome.severity
