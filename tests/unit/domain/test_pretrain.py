"""Which pretraining compute applies: declared values, the catalog, and the order of sources."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from flopsmeter.domain.classification import Outcome, classify
from flopsmeter.domain.model_names import MatchMethod
from flopsmeter.domain.numbers import exact
from flopsmeter.domain.pretrain import PretrainSource, resolve_pretrain_compute
from flopsmeter.domain.thresholds import DEFAULT_PRIMARY_POLICY, EU_GUIDELINE_2025_07, Scenario, threshold_for

# present but unusable declared values (tests/unit/domain/test_numbers.py has the full list for the parser)
BAD = ["", "abc", "-1.5e24", "0", "nan", "inf", "1e400", "1,5e24", "$(curl evil)"]


def test_seed_worked_example_llama_3_70b_threshold_is_4_5e23() -> None:
    # Given the seed's Llama-3-70B with PRETRAIN_FLOPS=1.5e24
    pretrain = resolve_pretrain_compute(environment_value="1.5e24", base_model_id="meta-llama/Meta-Llama-3-70B")
    # When a modification of 4.5e23 and one just above it are classified
    at = classify(4.5e23, pretrain.flops)
    over = classify(math.nextafter(4.5e23, math.inf), pretrain.flops)
    # Then the primary (aws-30pct-2026) threshold is 4.5e23, equal does not exceed, just above does
    assert at.primary_policy == DEFAULT_PRIMARY_POLICY == "aws-30pct-2026"
    assert at.primary.threshold == pytest.approx(4.5e23)
    assert at.primary.scenario is Scenario.RELATIVE
    assert at.primary.outcome is Outcome.APPROACHING
    assert over.primary.outcome is Outcome.EXCEEDS
    eu = next(r for r in at.results if r.policy == "eu-guideline-2025-07")
    assert eu.threshold == pytest.approx(5e23)
    assert eu.outcome is Outcome.APPROACHING


def test_catalog_llama_3_70b_uses_the_lowest_estimate() -> None:
    pretrain = resolve_pretrain_compute(base_model_id="llama-3-70b")
    assert pretrain.source is PretrainSource.CATALOG
    assert pretrain.flops == 1.5e24
    assert any("6.35e+24" in w or "7.86e+24" in w for w in pretrain.warnings)


@pytest.mark.parametrize("raw", BAD)
def test_bad_pretrain_flops_never_makes_classification_less_conservative(raw: str) -> None:
    # Given a base model whose catalog compute is known (a larger threshold) and a bad declared value
    resolved = resolve_pretrain_compute(environment_value=raw, base_model_id="meta-llama/Meta-Llama-3-70B")
    # Then the declared value is unknown, it does not fall through to the catalog, and a warning says why
    assert resolved.flops is None
    assert resolved.source is PretrainSource.UNKNOWN
    assert resolved.warnings
    result = classify(3.0e22, resolved.flops, warnings=resolved.warnings)
    assert result.primary.scenario is Scenario.DEFAULT
    assert result.primary.threshold == 3.3e22
    assert result.warnings == resolved.warnings


def test_argument_beats_environment_beats_tag_beats_catalog() -> None:
    assert resolve_pretrain_compute(argument_value="2e24", environment_value="3e24", tag_value="4e24").flops == 2e24
    assert resolve_pretrain_compute(environment_value="3e24", tag_value="4e24").source is PretrainSource.ENVIRONMENT
    assert resolve_pretrain_compute(tag_value="1.9e24", base_model_id="llama-3-70b").source is PretrainSource.TAG
    unknown = resolve_pretrain_compute(base_model_id="some/unknown-model")
    assert unknown.flops is None and unknown.source is PretrainSource.UNKNOWN


# ---- a declared value against the catalog (guideline Annex A.2: estimates within a 30 % error margin) -----------

LLAMA_70B = "meta-llama/Meta-Llama-3-70B"  # lowest catalog estimate 1.5e24; 1.3 x 1.5e24 = 1.95e24

DECLARED = [
    # (declared, override reason, pretraining compute used, source)
    ("1.0e24", None, 1.0e24, PretrainSource.ENVIRONMENT),  # below the catalog: lower threshold, used
    ("1.95e24", None, 1.95e24, PretrainSource.ENVIRONMENT),  # exactly at the 30 % margin: used
    ("1.9500000000000001e24", None, 1.5e24, PretrainSource.CATALOG),  # just above: the catalog figure
    ("7.86e24", None, 1.5e24, PretrainSource.CATALOG),  # 5x the catalog's lowest: the catalog figure
    ("7.86e24", "Meta confirmed 7.86e24 to us in writing (ticket 1234)", 7.86e24, PretrainSource.ENVIRONMENT),
    ("7.86e24", "   ", 1.5e24, PretrainSource.CATALOG),  # a blank reason is no reason
]


@pytest.mark.parametrize(("declared", "reason", "used", "source"), DECLARED)
def test_declared_value_above_the_catalog_margin_needs_a_recorded_reason(declared, reason, used, source) -> None:
    resolved = resolve_pretrain_compute(environment_value=declared, base_model_id=LLAMA_70B, override_reason=reason)
    assert resolved.flops == used
    assert resolved.source is source
    assert resolved.raw == declared
    if used != float(declared):
        assert any("more than 30 % above" in w and "override reason" in w for w in resolved.warnings)
    if reason and reason.strip():
        assert reason in resolved.basis


def test_an_inflated_declared_value_cannot_turn_exceeds_into_below() -> None:
    # Given a 1e24-FLOP fine-tune of Llama-3-70B and a declared pretraining compute five times the catalog's
    resolved = resolve_pretrain_compute(environment_value="7.86e24", base_model_id=LLAMA_70B)
    result = classify(1e24, resolved.flops, warnings=resolved.warnings)
    # Then it still exceeds (threshold 4.5e23), with a warning that says why
    assert result.primary.outcome is Outcome.EXCEEDS
    assert any("more than 30 % above" in w for w in result.warnings)


def test_override_reason_is_cleaned_and_bounded() -> None:
    resolved = resolve_pretrain_compute(
        environment_value="7.86e24", base_model_id=LLAMA_70B, override_reason="ok\x1b[31m" + "y" * 1000
    )
    assert resolved.flops == 7.86e24
    assert "\x1b" not in resolved.basis and len(resolved.basis) < 400


@pytest.mark.parametrize(("declared", "flops", "warned"), [
    ("1e28", 1e28, False), ("1.0000000000000001e28", None, True), ("1e30", None, True),
    ("1e20", 1e20, False), ("9.9e19", 9.9e19, True), ("1e12", 1e12, True),
])  # fmt: skip
def test_implausible_magnitudes_are_flagged_and_never_raise_the_threshold(declared, flops, warned) -> None:
    resolved = resolve_pretrain_compute(environment_value=declared)
    assert resolved.flops == flops
    assert any("plausible" in w or "than any" in w for w in resolved.warnings) is warned
    # above 1e28 -> unknown: the default threshold, lower than a third of the declared value
    # below 1e20 -> kept: a third of it is lower than the unknown-compute default
    eu = threshold_for(EU_GUIDELINE_2025_07, resolved.flops)
    assert eu.exact <= max(Fraction(10**23, 3), exact(float(declared)) / 3)


@pytest.mark.parametrize(("declared", "systemic"), [("9.999999999999999e24", False), ("1e25", True), ("3.8e25", True)])
def test_declared_compute_at_or_above_1e25_marks_the_base_systemic_risk(declared: str, systemic: bool) -> None:
    resolved = resolve_pretrain_compute(environment_value=declared, base_model_id="some/private-model")
    assert resolved.systemic_risk is systemic
    assert any("Art. 51(2)" in w for w in resolved.warnings) is systemic


def test_catalog_systemic_flag_survives_a_lower_declared_value() -> None:
    resolved = resolve_pretrain_compute(environment_value="1e24", base_model_id="meta-textgeneration-llama-3-1-405b")
    assert resolved.flops == 1e24 and resolved.systemic_risk


@pytest.mark.parametrize(("name", "method"), [
    ("meta-llama/Llama-3.1-405B", MatchMethod.EXACT),
    ("llama-3.1-405b", MatchMethod.ALIAS),
    ("s3://models/Llama-3.1-405B-Instruct/", MatchMethod.NORMALISED),
])  # fmt: skip
def test_the_match_method_is_recorded_and_a_405b_base_keeps_its_systemic_flag(name: str, method: MatchMethod) -> None:
    resolved = resolve_pretrain_compute(base_model_id=name)
    assert resolved.catalog_match is method
    assert resolved.systemic_risk and resolved.source is PretrainSource.CATALOG
    assert (method is MatchMethod.EXACT) is not any("matched catalog entry" in w for w in resolved.warnings)


def test_unknown_name_has_no_match() -> None:
    resolved = resolve_pretrain_compute(base_model_id="acme/secret-model-7b")
    assert resolved.catalog_match is None and resolved.flops is None
