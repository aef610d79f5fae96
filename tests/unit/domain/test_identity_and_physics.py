"""Issue 23, points 1-2: a base model recognised under the names people use, and declared figures checked
against physics (6·N·D with D bounded by the largest published training set)."""

from __future__ import annotations

import pytest

from flopsmeter.domain.classification import Outcome, classify
from flopsmeter.domain.customization_names import bedrock_base_model, sagemaker_base_model
from flopsmeter.domain.model_names import MatchMethod, stated_parameters
from flopsmeter.domain.pretrain import (
    LARGEST_PUBLISHED_TRAINING_TOKENS,
    PretrainSource,
    plausible_pretrain_ceiling,
    resolve_pretrain_compute,
)
from flopsmeter.domain.thresholds import Scenario

NAMES_OF_A_405B = [
    "meta-llama/Llama-3.1-405B-Instruct-AWQ-INT4",
    "hugging-quants/Meta-Llama-3.1-405B-Instruct-GPTQ-INT4",
    "unsloth/Meta-Llama-3.1-405B-bnb-4bit",
    "neuralmagic/Meta-Llama-3.1-405B-Instruct-FP8-dynamic",
    "bartowski/Meta-Llama-3.1-405B-Instruct-GGUF",
    "mlx-community/Meta-Llama-3.1-405B-Instruct-4bit",
    "NousResearch/Hermes-3-Llama-3.1-405B",
    "allenai/Llama-3.1-Tulu-3-405B",
    "s3://my-bucket/models/Hermes-3-Llama-3.1-405B/",
    "meta.llama3-1-405b-instruct-v1:0",
]


@pytest.mark.parametrize("name", NAMES_OF_A_405B)
def test_a_systemic_base_under_any_name_is_systemic_and_a_4e24_job_gets_the_notification_threshold(name) -> None:
    # Given the names people actually give a Llama 3.1 405B, on --base-model / the job's environment
    pretrain = resolve_pretrain_compute(base_model_id=name)
    # Then it is the systemic-risk base, with its threshold, and the basis or warnings say how it was matched
    assert pretrain.systemic_risk is True
    assert pretrain.flops is not None and pretrain.flops > 1e25
    result = classify(4e24, pretrain.flops, systemic_risk_base=pretrain.systemic_risk)
    assert result.primary.scenario is Scenario.SYSTEMIC and result.primary.outcome is Outcome.EXCEEDS


def test_a_derivative_is_treated_as_its_base_with_the_basis_stated() -> None:
    pretrain = resolve_pretrain_compute(base_model_id="allenai/Llama-3.1-Tulu-3-405B")
    assert pretrain.catalog_match is MatchMethod.FAMILY_SIZE
    assert "declares the family and size of meta-llama/Llama-3.1-405B" in pretrain.basis
    assert any("treated as that base for the systemic flag and threshold" in w for w in pretrain.warnings)


def test_a_bedrock_job_on_a_quantised_base_and_a_hub_arn_on_every_surface_match() -> None:
    assert bedrock_base_model("arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-1-405b-instruct-v1:0").match
    ref = sagemaker_base_model(
        "arn:aws:sagemaker:us-east-1:aws:hub-content/SageMakerPublicHub/Model/meta-textgeneration-llama-3-1-405b-instruct-fp8/2.0.0"
    )
    assert ref.match is not None and ref.match.model.systemic and ref.warnings() == ()


def test_a_private_hub_base_is_flagged_and_asks_for_a_declaration() -> None:
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:hub-content/TeamHub/Model/meta-textgeneration-llama-3-1-8b/1.0.0"
    ref = sagemaker_base_model(arn)
    assert ref.private_hub_account == "123456789012"
    (warning,) = ref.warnings()
    assert "private SageMaker hub" in warning and "may already be a modified model" in warning
    assert "FLOPSMETER_PARENT_FLOPS" in warning
    # the same ARN given as --base-model / on the job's environment is flagged too
    pretrain = resolve_pretrain_compute(base_model_id=arn)
    assert any("private SageMaker hub" in w for w in pretrain.warnings)


@pytest.mark.parametrize(
    ("name", "parameters"),
    [("Mistral-7B-v0.1", 7e9), ("Qwen2.5-1.5B", 1.5e9), ("Mixtral-8x7B", 5.6e10), ("gemma-3-270m", 2.7e8),
     ("Qwen3-235B-A22B", 2.35e11), ("s3://bucket/run-7/", None), ("no-size", None)],
)  # fmt: skip
def test_a_name_states_its_size(name, parameters) -> None:
    assert stated_parameters(name) == parameters


# ---- point 2: declared pretraining compute against physics ------------------------------------------------


def test_5e25_on_a_7b_base_the_catalog_knows_only_by_size_is_not_used() -> None:
    # Given PRETRAIN_FLOPS=5e25 on Mistral-7B (the catalog knows its size, not its compute): ~1e15 tokens
    pretrain = resolve_pretrain_compute(environment_value="5e25", base_model_id="mistralai/Mistral-7B-v0.1")
    # Then the declaration is not used: the compute is unknown, the base is not made systemic by it
    assert pretrain.flops is None and pretrain.source is PretrainSource.UNKNOWN
    assert pretrain.systemic_risk is False
    assert any("could plausibly need" in w and "training tokens" in w for w in pretrain.warnings)
    # and a 1e24 job exceeds (before: threshold 1.67e25 and "below")
    assert classify(1e24, pretrain.flops).primary.outcome is Outcome.EXCEEDS


def test_an_implausible_declaration_on_a_base_with_a_catalog_estimate_uses_the_catalog() -> None:
    pretrain = resolve_pretrain_compute(environment_value="5e25", base_model_id="Qwen/Qwen2.5-7B")
    assert pretrain.source is PretrainSource.CATALOG and pretrain.flops == pytest.approx(8.2188e23)
    assert "implausible" in pretrain.basis


def test_an_implausible_declaration_on_an_unknown_base_whose_name_states_its_size_is_not_used() -> None:
    pretrain = resolve_pretrain_compute(tag_value="5e25", base_model_id="s3://bucket/my-org-chat-7B/")
    assert pretrain.flops is None and pretrain.source is PretrainSource.UNKNOWN


def test_an_override_reason_lets_an_implausible_declaration_through_and_is_recorded() -> None:
    pretrain = resolve_pretrain_compute(
        environment_value="5e25", base_model_id="mistralai/Mistral-7B-v0.1", override_reason="vendor attestation 12"
    )
    assert pretrain.flops == 5e25 and "vendor attestation 12" in pretrain.basis


def test_a_plausible_declaration_is_used_and_the_bound_is_six_n_d() -> None:
    ceiling = plausible_pretrain_ceiling(7e9)
    assert float(ceiling) == pytest.approx(6 * 7e9 * LARGEST_PUBLISHED_TRAINING_TOKENS * 3)
    pretrain = resolve_pretrain_compute(environment_value="1e24", base_model_id="mistralai/Mistral-7B-v0.1")
    assert pretrain.flops == 1e24 and pretrain.source is PretrainSource.ENVIRONMENT


def test_every_published_estimate_in_the_catalog_is_plausible() -> None:
    from flopsmeter.domain.catalog import BASE_MODELS

    for model in BASE_MODELS:
        for estimate in model.estimates:
            if model.parameters:
                assert estimate.flops <= float(plausible_pretrain_ceiling(model.parameters)), model.model_id


def test_the_docs_quote_the_bound_and_the_date_rule_the_code_uses() -> None:
    from pathlib import Path

    from flopsmeter.domain.pretrain import PLAUSIBILITY_HEADROOM

    docs = (Path(__file__).resolve().parents[3] / "docs" / "formulas.md").read_text(encoding="utf-8")
    assert f"6 x N x {LARGEST_PUBLISHED_TRAINING_TOKENS:.0e}".replace("+", "") in docs
    assert f"tokens x {PLAUSIBILITY_HEADROOM}" in docs
    assert "Reg. 1182/71 Art. 3(1), 3(2)(c), 3(4)" in docs and "guideline para. 30" in docs
    from datetime import UTC, datetime

    from flopsmeter.domain.deadlines import due_text, notification_due

    example = due_text(notification_due(datetime(2026, 3, 15, 22, 30, tzinfo=UTC)))  # the DST case of the tests
    assert f"`{example}`" in docs
