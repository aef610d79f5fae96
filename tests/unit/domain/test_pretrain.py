"""Which pretraining compute applies: declared values, the catalog, and the order of sources."""

from __future__ import annotations

import math

import pytest

from flopsmeter.domain.classification import Outcome, classify
from flopsmeter.domain.pretrain import PretrainSource, resolve_pretrain_compute
from flopsmeter.domain.thresholds import DEFAULT_PRIMARY_POLICY, Scenario

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
    assert resolve_pretrain_compute(tag_value="4e24", base_model_id="llama-3-70b").source is PretrainSource.TAG
    unknown = resolve_pretrain_compute(base_model_id="some/unknown-model")
    assert unknown.flops is None and unknown.source is PretrainSource.UNKNOWN
