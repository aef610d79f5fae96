"""The base-model catalog: estimates, lookup, systemic-risk flags."""

from __future__ import annotations

import pytest

from flopsmeter.domain.catalog import BASE_MODELS, match_base_model
from flopsmeter.domain.classification import classify


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
