"""Managed customization jobs (SageMaker serverless, Bedrock): hub ARNs, Bedrock ids, techniques, the estimate per
technique pinned against the formulas, evaluations, and the missing-token path."""

from __future__ import annotations

import pytest

from flopsmeter.domain.customization import (
    ASSUMED_LORA,
    BEDROCK_MAX_EPOCHS,
    MAX_SEQUENCE_LENGTH,
    MIN_RECORD_BYTES,
    STAND_IN_PARAMETERS,
    JobKind,
    bedrock_technique,
    estimate_bedrock_job,
    estimate_serverless_job,
    sagemaker_technique,
    sequence_length,
)
from flopsmeter.domain.customization_names import bedrock_base_model, parse_hub_content_arn, sagemaker_base_model
from flopsmeter.domain.errors import InvalidModelSpec
from flopsmeter.domain.estimate import (
    ARCHITECTURE_UNCERTAINTY,
    PARAMETER_UNCERTAINTY,
    Technique,
    per_token_cost_from_parameters,
)
from flopsmeter.domain.flops import flops_per_token
from flopsmeter.domain.methods import FineTuning
from flopsmeter.domain.model_configs import bundled_config_for, load_bundled_config
from flopsmeter.domain.shape import ModelShape
from flopsmeter.domain.thresholds import SYSTEMIC_RISK_TRAINING_FLOPS

HUB = "arn:aws:sagemaker:us-east-1:aws:hub-content/SageMakerPublicHub/Model"
LLAMA_8B_ARN = f"{HUB}/meta-textgeneration-llama-3-1-8b-instruct/2.8.1"
TOKENS = 50_000_000
SEQ = 4096
LLAMA_8B = ModelShape.from_hf_config(load_bundled_config("llama-3.1-8b"))


def _job(technique: str | None, peft: str | None = None, job_type: str = "FineTuning") -> dict[str, object]:
    config: dict[str, object] = {"BaseModelArn": LLAMA_8B_ARN, "JobType": job_type, "SequenceLength": "4K"}
    if technique:
        config["CustomizationTechnique"] = technique
    if peft:
        config["Peft"] = peft
    return config


# ---- hub content ARNs and Bedrock ids -------------------------------------------------------------------------


def test_hub_content_arn_with_version() -> None:
    ref = parse_hub_content_arn(LLAMA_8B_ARN)
    assert (ref.partition, ref.region, ref.account, ref.hub) == ("aws", "us-east-1", "aws", "SageMakerPublicHub")
    assert (ref.content_type, ref.name, ref.version) == ("Model", "meta-textgeneration-llama-3-1-8b-instruct", "2.8.1")


def test_hub_content_arn_without_version_means_latest() -> None:
    ref = parse_hub_content_arn(f"{HUB}/huggingface-llm-qwen2-5-7b-instruct")
    assert ref.name == "huggingface-llm-qwen2-5-7b-instruct"
    assert ref.version is None


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws-cn:sagemaker:cn-north-1:aws:hub-content/SageMakerPublicHub/Model/meta-textgeneration-llama-3-2-1b",
        "arn:aws-us-gov:sagemaker:us-gov-west-1:123456789012:hub-content/MyHub/Model/meta-textgeneration-llama-3-2-1b/1.0.0",
    ],
)
def test_hub_content_arn_other_partitions_and_private_hubs(arn: str) -> None:
    ref = parse_hub_content_arn(arn)
    assert ref.name == "meta-textgeneration-llama-3-2-1b"
    assert sagemaker_base_model(arn).model_id == "meta-llama/Llama-3.2-1B"


@pytest.mark.parametrize(
    "bad",
    ["", "arn:aws:sagemaker:us-east-1:aws:model/x", f"{HUB}/x/1.2", f"{HUB}/-bad", "arn:aws:bedrock:us-east-1::x"],
)
def test_not_a_hub_content_arn_is_refused(bad: str) -> None:
    with pytest.raises(InvalidModelSpec):
        parse_hub_content_arn(bad)


def test_hub_content_names_match_the_catalog() -> None:
    assert sagemaker_base_model(LLAMA_8B_ARN).model_id == "meta-llama/Llama-3.1-8B"
    assert sagemaker_base_model(f"{HUB}/huggingface-llm-qwen2-5-7b-instruct").model_id == "Qwen/Qwen2.5-7B"


def test_unknown_hub_content_is_said_so() -> None:
    ref = sagemaker_base_model(f"{HUB}/amazon-nova-micro")
    assert ref.match is None
    assert "not in the bundled catalog" in ref.warnings()[0]


@pytest.mark.parametrize(
    ("reference", "model_id"),
    [
        ("arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-1-8b-instruct-v1:0", "meta-llama/Llama-3.1-8B"),
        ("meta.llama3-1-70b-instruct-v1:0", "meta-llama/Llama-3.1-70B"),
        ("us.meta.llama3-2-3b-instruct-v1:0", "meta-llama/Llama-3.2-3B"),
        ("arn:aws:bedrock:us-west-2::foundation-model/meta.llama3-2-1b-instruct-v1:0:128k", "meta-llama/Llama-3.2-1B"),
    ],
)
def test_bedrock_base_models_match_the_catalog(reference: str, model_id: str) -> None:
    assert bedrock_base_model(reference).model_id == model_id


def test_bedrock_models_of_unpublished_size_and_custom_models_are_unknown() -> None:
    nova = bedrock_base_model("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0")
    assert nova.match is None and nova.source == "bedrock-foundation-model"
    custom = bedrock_base_model(
        "arn:aws:bedrock:us-east-1:123456789012:custom-model/meta.llama3-1-8b-instruct-v1:0/abcdefghijkl"
    )
    assert custom.match is None and custom.source == "bedrock-custom-model"
    assert "customization of a customization" in custom.warnings()[0]


# ---- techniques --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("technique", "peft", "expected", "adapters"),
    [("SFT", "LORA", Technique.SFT, True), ("SFT", None, Technique.SFT, False), ("DPO", None, Technique.DPO, False),
     ("RLVR", "LORA", Technique.RLVR, True), ("RLAIF", None, Technique.RLAIF, False)],
)  # fmt: skip
def test_sagemaker_techniques(technique: str, peft: str | None, expected: Technique, adapters: bool) -> None:
    reading = sagemaker_technique(technique, peft)
    assert (reading.technique, reading.adapters, reading.notes) == (expected, adapters, ())


def test_unknown_or_missing_technique_reads_as_the_costliest() -> None:
    assert sagemaker_technique(None, None).technique is Technique.RLAIF
    assert sagemaker_technique("PPO", "IA3").technique is Technique.RLAIF
    assert sagemaker_technique("PPO", "IA3").adapters is False  # unknown Peft: full (costlier)
    assert bedrock_technique("SOMETHING_NEW").technique is Technique.RLAIF


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("FINE_TUNING", Technique.SFT), ("CONTINUED_PRE_TRAINING", Technique.CONTINUED_PRETRAINING),
     ("DISTILLATION", Technique.DISTILLATION), ("REINFORCEMENT_FINE_TUNING", Technique.RLVR)],
)  # fmt: skip
def test_bedrock_customization_types_assume_full_fine_tuning(kind: str, expected: Technique) -> None:
    reading = bedrock_technique(kind)
    assert reading.technique is expected and reading.adapters is False


# ---- the estimate per technique, against the formulas ---------------------------------------------------------


def _upper(value: float) -> float:
    return value * (1 + ARCHITECTURE_UNCERTAINTY)


def test_sft_lora_is_the_lora_training_cost_per_token_times_billable_tokens() -> None:
    est = estimate_serverless_job(_job("SFT", "LORA"), TOKENS)
    fpt = flops_per_token(LLAMA_8B, SEQ, ASSUMED_LORA)
    assert est.estimate.flops == pytest.approx(_upper(fpt.total * TOKENS))
    assert est.estimate.breakdown == {"update": pytest.approx(fpt.total * TOKENS)}
    assert est.kind is JobKind.FINE_TUNING and est.modification_flops == est.estimate.flops
    assert not est.needs_declaration


def test_sft_full_costs_more_than_lora() -> None:
    full = estimate_serverless_job(_job("SFT"), TOKENS)
    fpt = flops_per_token(LLAMA_8B, SEQ, FineTuning())
    assert full.estimate.flops == pytest.approx(_upper(fpt.total * TOKENS))
    assert full.estimate.flops > estimate_serverless_job(_job("SFT", "LORA"), TOKENS).estimate.flops


def test_dpo_adds_the_reference_forward_over_twice_the_billed_tokens() -> None:
    est = estimate_serverless_job(_job("DPO"), TOKENS)
    fpt = flops_per_token(LLAMA_8B, SEQ, FineTuning())
    assert est.estimate.breakdown["reference"] == pytest.approx(fpt.forward * 2 * TOKENS)
    assert est.estimate.flops == pytest.approx(_upper((fpt.total + fpt.forward) * 2 * TOKENS))


def test_rlvr_counts_each_token_as_generated_and_trained() -> None:
    est = estimate_serverless_job(_job("RLVR"), TOKENS)
    fpt = flops_per_token(LLAMA_8B, SEQ, FineTuning())
    assert est.estimate.flops == pytest.approx(_upper((fpt.total + 3 * fpt.forward) * TOKENS))
    assert any("conservative reading" in note for note in est.estimate.assumptions)


def test_catalog_model_without_bundled_config_uses_its_parameters_at_the_longest_sequence_the_api_accepts() -> None:
    est = estimate_serverless_job({"BaseModelArn": f"{HUB}/huggingface-llm-qwen3-8b", "JobType": "FineTuning",
                                   "CustomizationTechnique": "SFT"}, TOKENS)  # fmt: skip
    assert est.base.model_id == "Qwen/Qwen3-8B"
    assert est.seq_len == MAX_SEQUENCE_LENGTH == 1024 * 1024
    cost = per_token_cost_from_parameters(8.2e9, adapters=False, seq_len=MAX_SEQUENCE_LENGTH)
    assert est.estimate.flops == pytest.approx(cost.training * TOKENS * (1 + PARAMETER_UNCERTAINTY))


def test_missing_sequence_length_uses_the_longest_context() -> None:
    config = _job("SFT")
    del config["SequenceLength"]
    est = estimate_serverless_job(config, TOKENS)
    assert est.seq_len == 131072
    assert est.estimate.flops > estimate_serverless_job(_job("SFT"), TOKENS).estimate.flops


@pytest.mark.parametrize(("value", "tokens"), [("4K", 4096), ("32k", 32768), (" 1024K ", 1024 * 1024), (4096, 4096),
                                              ("4096", 4096), ("0K", None), ("long", None), (None, None)])  # fmt: skip
def test_sequence_length_reads_the_apis_k_notation(value: object, tokens: int | None) -> None:
    assert sequence_length(value) == tokens


def test_bundled_configs_map_to_catalog_entries() -> None:
    assert bundled_config_for(sagemaker_base_model(LLAMA_8B_ARN).match.model) == "llama-3.1-8b"  # type: ignore[union-attr]


# ---- evaluation and missing tokens ---------------------------------------------------------------------------


def test_evaluation_is_recorded_but_adds_nothing_to_the_modification() -> None:
    est = estimate_serverless_job(_job(None, job_type="Evaluation"), TOKENS)
    fpt = flops_per_token(LLAMA_8B, SEQ, FineTuning())
    assert est.kind is JobKind.EVALUATION
    assert est.estimate.technique is Technique.EVALUATION
    assert est.estimate.flops == pytest.approx(_upper(fpt.forward * TOKENS))  # forward passes only, kept
    assert est.modification_flops == 0.0
    assert any("para. 118" in w for w in est.warnings())


def test_missing_token_count_is_bounded_at_the_presumption_and_asks_for_a_declaration() -> None:
    est = estimate_serverless_job(_job("SFT", "LORA"), None)
    assert est.needs_declaration
    assert not est.estimate.tokens.known
    assert est.estimate.central >= SYSTEMIC_RISK_TRAINING_FLOPS
    assert "Art. 51(2)" in est.estimate.tokens.basis
    assert any("declaration" in w for w in est.warnings())


@pytest.mark.parametrize("bad", [-1, "many", 1.5, float("nan"), True])
def test_unusable_token_counts_take_the_missing_path(bad: object) -> None:
    assert estimate_serverless_job(_job("SFT"), bad).needs_declaration


# ---- Bedrock -----------------------------------------------------------------------------------------------------


def _bedrock(**extra: object) -> dict[str, object]:
    return {"baseModelArn": "arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-1-8b-instruct-v1:0",
            "customizationType": "FINE_TUNING", "hyperParameters": {"epochCount": "2"}, **extra}  # fmt: skip


def test_bedrock_fine_tuning_is_bounded_by_the_dataset_limit_times_epochs() -> None:
    est = estimate_bedrock_job(_bedrock())
    fpt = flops_per_token(LLAMA_8B, 131072, FineTuning())  # Bedrock states no sequence length
    assert est.estimate.tokens.tokens == 2**30 * 2
    assert est.estimate.flops == pytest.approx(_upper(fpt.total * 2**31))
    assert est.needs_declaration and "epochCount 2" in est.estimate.tokens.basis


def test_bedrock_without_epochs_uses_the_documented_maximum() -> None:
    est = estimate_bedrock_job(_bedrock(hyperParameters={}))
    assert est.estimate.tokens.tokens == 2**30 * BEDROCK_MAX_EPOCHS


def test_bedrock_continued_pretraining_has_the_larger_dataset_limit() -> None:
    est = estimate_bedrock_job(_bedrock(customizationType="CONTINUED_PRE_TRAINING"))
    assert est.estimate.tokens.tokens == 10 * 2**30 * 2


def test_bedrock_reinforcement_fine_tuning_counts_rollouts() -> None:
    rft = {
        "rftConfig": {"hyperParameters": {"epochCount": 1, "trainingSamplePerPrompt": 4, "inferenceMaxTokens": 1000}}
    }
    est = estimate_bedrock_job(_bedrock(customizationType="REINFORCEMENT_FINE_TUNING", customizationConfig=rft))
    assert est.estimate.technique is Technique.RLVR
    limit = 10 * 2**30  # no documented limit for this type: the largest documented one
    assert est.estimate.tokens.tokens == 4 * (limit + limit // MIN_RECORD_BYTES * 1000)


def test_bedrock_model_of_unpublished_size_uses_a_stand_in_and_asks_for_a_declaration() -> None:
    est = estimate_bedrock_job(
        _bedrock(baseModelArn="arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0")
    )
    assert not est.estimate.cost_known
    cost = per_token_cost_from_parameters(STAND_IN_PARAMETERS, adapters=False, seq_len=MAX_SEQUENCE_LENGTH)
    assert est.estimate.central == pytest.approx(cost.training * 2**31)
    assert est.estimate.as_dict()["cost_known"] is False


@pytest.mark.parametrize("billable", [0, "0", None, -5, "abc", 1.5])
def test_billable_tokens_zero_missing_or_negative_get_the_conservative_bound_not_zero_flops(billable) -> None:
    # issue 23: BillableTokenCount 0 was recorded as 0 FLOPs and "below"
    est = estimate_serverless_job(_job("SFT", "LORA"), billable)
    assert est.estimate.central >= SYSTEMIC_RISK_TRAINING_FLOPS and not est.estimate.tokens.known
    assert est.needs_declaration


def test_a_private_hub_base_is_flagged_and_asks_for_a_declaration() -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:hub-content/TeamHub/Model/meta-textgeneration-llama-3-1-8b/1.0.0"
    config = {"BaseModelArn": arn, "JobType": "FineTuning", "SequenceLength": "4K", "CustomizationTechnique": "SFT"}
    est = estimate_serverless_job(config, TOKENS)
    assert est.base.private_hub_account == "123456789012" and est.needs_declaration
    assert any("private SageMaker hub" in w for w in est.warnings())
