"""The base-model catalog: estimates and their labels, name matching, systemic-risk flags."""

from __future__ import annotations

import re

import pytest

from flopsmeter.domain.catalog import BASE_MODELS, ESTIMATE_MARGIN, BaseModel, ComputeEstimate
from flopsmeter.domain.catalog_names import match_base_model
from flopsmeter.domain.classification import classify
from flopsmeter.domain.model_names import MatchMethod
from flopsmeter.domain.numbers import exact

METHODS = {"published", "6ND", "hardware", "epoch", "guidance-example", "inferred"}


def _model(model_id: str) -> BaseModel:
    match = match_base_model(model_id)
    assert match is not None and match.method is MatchMethod.EXACT
    return match.model


def test_every_estimate_has_a_known_method_and_a_source_and_the_lowest_is_used() -> None:
    for model in BASE_MODELS:
        for estimate in model.estimates:
            assert estimate.method in METHODS and estimate.source and estimate.note
        if model.estimates:
            assert model.pretrain_flops == min(e.flops for e in model.estimates)


def test_labels_do_not_overstate_what_a_figure_is() -> None:
    # The AWS guidance's Llama-3-70B figure is an example there, not a figure Meta published
    llama = _model("meta-llama/Meta-Llama-3-70B")
    assert llama.used_estimate is not None and llama.used_estimate.flops == 1.5e24
    assert llama.used_estimate.method == "guidance-example"
    # Guideline annex models mapped to named models are our inference
    for model_id in ("meta-llama/Llama-3.2-1B", "microsoft/Phi-3-mini-4k-instruct"):
        annex = [e for e in _model(model_id).estimates if "Annex" in e.source]
        assert annex and all(e.method == "inferred" and "inference" in e.note for e in annex)
    assert not any(e.method == "published" and "Annex" in e.source for m in BASE_MODELS for e in m.estimates)


@pytest.mark.parametrize(
    "model_id",
    ["meta-llama/Llama-3.3-70B", "meta-llama/Llama-4-Scout-17B-16E", "meta-llama/Llama-4-Maverick-17B-128E",
     "Qwen/Qwen3-8B", "Qwen/Qwen3-32B", "Qwen/Qwen3-30B-A3B", "Qwen/Qwen3-235B-A22B", "google/gemma-3-27b-pt",
     "google/gemma-3-1b-pt", "openai/gpt-oss-120b", "openai/gpt-oss-20b", "microsoft/phi-4",
     "mistralai/Mistral-Small-24B-Base-2501", "mistralai/Mistral-Medium-3",
     "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", "deepseek-ai/DeepSeek-R1-Distill-Llama-70B"],
)  # fmt: skip
def test_2025_models_are_in_the_catalog(model_id: str) -> None:
    assert _model(model_id).model_id == model_id


def test_mixture_of_experts_estimates_use_active_parameters() -> None:
    qwen = _model("Qwen/Qwen3-235B-A22B")
    assert qwen.pretrain_flops == pytest.approx(6 * 22e9 * 36e12)
    scout = _model("meta-llama/Llama-4-Scout-17B-16E")
    assert scout.pretrain_flops == pytest.approx(6 * 17e9 * 40e12)


def test_models_without_public_compute_say_so() -> None:
    for model_id in ("mistralai/Mistral-Small-24B-Base-2501", "mistralai/Mistral-Medium-3"):
        model = _model(model_id)
        assert model.pretrain_flops is None
        assert "no public compute estimate" in model.warnings()[0]


def test_distills_carry_the_compute_of_the_weights_they_start_from() -> None:
    # Guideline para. 117: weights initialised from another model carry its training compute
    for distill, base in (("DeepSeek-R1-Distill-Qwen-32B", "Qwen/Qwen2.5-32B"),
                          ("DeepSeek-R1-Distill-Llama-70B", "meta-llama/Llama-3.3-70B"),
                          ("DeepSeek-R1-Distill-Llama-8B", "meta-llama/Llama-3.1-8B"),
                          ("DeepSeek-R1-Distill-Qwen-1.5B", "Qwen/Qwen2.5-Math-1.5B")):  # fmt: skip
        model = _model(f"deepseek-ai/{distill}")
        assert model.initialised_from == base
        assert model.pretrain_flops == _model(base).pretrain_flops
        assert all("para. 117" in e.note for e in model.estimates)
    assert _model("deepseek-ai/DeepSeek-R1").pretrain_flops == _model("deepseek-ai/DeepSeek-V3").pretrain_flops


def test_systemic_catalog_model_gets_systemic_threshold() -> None:
    model = _model("meta-llama/Llama-3.1-405B")
    assert model.systemic
    assert model.pretrain_flops == pytest.approx(6 * 405e9 * 15.6e12)  # 6ND 3.79e25 is below Meta's 3.8e25
    result = classify(1e24, model.pretrain_flops, systemic_risk_base=model.systemic)
    assert result.primary.threshold == 3.3e24 and result.primary.scenario == "systemic"


def _with(*flops: float) -> BaseModel:
    return BaseModel("x/test", None, None, None, tuple(ComputeEstimate(f, "6ND", "n", "s") for f in flops))


def test_estimates_straddling_1e25_make_the_base_systemic_and_warn() -> None:
    model = _with(6e24, 1.2e25)
    assert model.systemic
    assert any("straddle 1e+25" in w for w in model.warnings())
    assert not _with(6e24, 9e24).systemic


def test_an_estimate_within_the_30_percent_margin_of_1e25_warns() -> None:
    near = _with(6.35e24, 9.97e24)
    assert not near.systemic
    assert any("30 % error margin of 1e+25" in w for w in near.warnings())
    assert not any("1e+25" in w for w in _with(6e24, 7e24).warnings())
    assert exact(7.6e24) * ESTIMATE_MARGIN < 10**25 <= exact(7.7e24) * ESTIMATE_MARGIN
    # the 70B Llamas (7.0M H100-hours at U=0.4 = 9.97e24) are the real cases
    assert any("margin" in w for w in _model("meta-llama/Llama-3.1-70B").warnings())


# ---- name matching -------------------------------------------------------------------------------------

LLAMA_405B = "meta-llama/Llama-3.1-405B"
ALIASES = [
    ("meta-llama/Llama-3.1-405B", LLAMA_405B, MatchMethod.EXACT),
    ("META-LLAMA/llama-3.1-405b", LLAMA_405B, MatchMethod.EXACT),
    ("Llama-3.1-405B", LLAMA_405B, MatchMethod.ALIAS),
    ("llama-3.1-405b", LLAMA_405B, MatchMethod.ALIAS),
    ("phi-3-mini", "microsoft/Phi-3-mini-4k-instruct", MatchMethod.ALIAS),
    ("meta-llama/Llama-3.1-405B-Instruct", LLAMA_405B, MatchMethod.NORMALISED),
    ("meta-llama/Meta-Llama-3.1-405B-Instruct-FP8", LLAMA_405B, MatchMethod.NORMALISED),
    ("meta-llama/Llama-3.1-405B@main", LLAMA_405B, MatchMethod.NORMALISED),
    ("meta-llama/Llama-3.1-405B@3f1e0a4b", LLAMA_405B, MatchMethod.NORMALISED),
    ("meta-textgeneration-llama-3-1-405b-instruct", LLAMA_405B, MatchMethod.NORMALISED),
    ("meta-textgeneration-llama-3-1-405b-instruct-fp8", LLAMA_405B, MatchMethod.NORMALISED),
    ("s3://my-bucket/models/Llama-3.1-405B-Instruct/", LLAMA_405B, MatchMethod.NORMALISED),
    ("s3://jumpstart-cache/meta-textgeneration/meta-textgeneration-llama-3-1-405b-instruct/artifacts/v1.0.0/",
     LLAMA_405B, MatchMethod.NORMALISED),
    ("https://huggingface.co/meta-llama/Llama-3.1-405B", LLAMA_405B, MatchMethod.NORMALISED),
    ("someone/Llama-3.1-8B", "meta-llama/Llama-3.1-8B", MatchMethod.NORMALISED),
    ("llama3.1:8b", "meta-llama/Llama-3.1-8B", MatchMethod.NORMALISED),
    ("meta-textgeneration-llama-3-8b", "meta-llama/Meta-Llama-3-8B", MatchMethod.NORMALISED),
    ("meta-llama/Llama-3.3-70B-Instruct", "meta-llama/Llama-3.3-70B", MatchMethod.NORMALISED),
    # "-Instruct-v0.1": the variant is not at the end; the family and size still name the base (issue 23)
    ("mistralai/Mistral-7B-Instruct-v0.1", "mistralai/Mistral-7B-v0.1", MatchMethod.FAMILY_SIZE),
    ("mistralai/Mistral-Small-24B-Instruct-2501", "mistralai/Mistral-Small-24B-Base-2501", MatchMethod.NORMALISED),
    ("mistralai/Mistral-Small-3.1-24B-Instruct-2503", "mistralai/Mistral-Small-24B-Base-2501",
     MatchMethod.NORMALISED),
    ("huggingface-llm-qwen2-5-7b-instruct", "Qwen/Qwen2.5-7B", MatchMethod.NORMALISED),
    ("Qwen/Qwen3-235B-A22B-Instruct-2507", "Qwen/Qwen3-235B-A22B", MatchMethod.NORMALISED),
    ("Qwen/Qwen3-30B-A3B-Base", "Qwen/Qwen3-30B-A3B", MatchMethod.NORMALISED),
    ("google/gemma-3-27b-it", "google/gemma-3-27b-pt", MatchMethod.NORMALISED),
    ("huggingface-llm-gemma-2-9b-instruct", "google/gemma-2-9b", MatchMethod.NORMALISED),
    ("microsoft/Phi-4-reasoning-plus", "microsoft/Phi-4-reasoning", MatchMethod.NORMALISED),
    ("deepseek-llm-r1-distill-llama-70b", "deepseek-ai/DeepSeek-R1-Distill-Llama-70B", MatchMethod.NORMALISED),
    ("deepseek-ai/DeepSeek-R1-0528", "deepseek-ai/DeepSeek-R1", MatchMethod.NORMALISED),
    # issue 23: quantisation and format suffixes, conversion repos, Bedrock ids, derivatives
    ("meta-llama/Llama-3.1-405B-Instruct-AWQ-INT4", LLAMA_405B, MatchMethod.NORMALISED),
    ("hugging-quants/Meta-Llama-3.1-405B-Instruct-AWQ-INT4", LLAMA_405B, MatchMethod.NORMALISED),
    ("hugging-quants/Meta-Llama-3.1-405B-Instruct-GPTQ-INT4", LLAMA_405B, MatchMethod.NORMALISED),
    ("unsloth/Meta-Llama-3.1-405B-bnb-4bit", LLAMA_405B, MatchMethod.NORMALISED),
    ("neuralmagic/Meta-Llama-3.1-405B-Instruct-FP8-dynamic", LLAMA_405B, MatchMethod.NORMALISED),
    ("RedHatAI/Meta-Llama-3.1-405B-Instruct-quantized.w4a16", LLAMA_405B, MatchMethod.NORMALISED),
    ("bartowski/Meta-Llama-3.1-405B-Instruct-GGUF", LLAMA_405B, MatchMethod.NORMALISED),
    ("s3://models/gguf/Meta-Llama-3.1-405B-Instruct-Q4_K_M.gguf", LLAMA_405B, MatchMethod.NORMALISED),
    ("mlx-community/Meta-Llama-3.1-405B-Instruct-4bit", LLAMA_405B, MatchMethod.NORMALISED),
    ("s3://my-bucket/quantised/Meta-Llama-3.1-405B-Instruct-AWQ-INT4/", LLAMA_405B, MatchMethod.NORMALISED),
    ("meta.llama3-1-405b-instruct-v1:0", LLAMA_405B, MatchMethod.NORMALISED),
    ("us.meta.llama3-1-405b-instruct-v1:0", LLAMA_405B, MatchMethod.NORMALISED),
    ("arn:aws:bedrock:us-west-2::foundation-model/meta.llama3-1-405b-instruct-v1:0", LLAMA_405B,
     MatchMethod.NORMALISED),
    ("arn:aws:sagemaker:us-east-1:aws:hub-content/SageMakerPublicHub/Model/meta-textgeneration-llama-3-1-405b-instruct-fp8/2.0.0",
     LLAMA_405B, MatchMethod.NORMALISED),
    ("NousResearch/Hermes-3-Llama-3.1-405B", LLAMA_405B, MatchMethod.FAMILY_SIZE),
    ("NousResearch/Hermes-3-Llama-3.1-405B-FP8", LLAMA_405B, MatchMethod.FAMILY_SIZE),
    ("allenai/Llama-3.1-Tulu-3-405B", LLAMA_405B, MatchMethod.FAMILY_SIZE),
    ("s3://finetunes/Llama-3.1-Tulu-3-405B/checkpoint-100/", LLAMA_405B, MatchMethod.FAMILY_SIZE),
    ("NousResearch/Hermes-3-Llama-3.1-8B", "meta-llama/Llama-3.1-8B", MatchMethod.FAMILY_SIZE),
    ("nvidia/Llama-3.1-Nemotron-70B-Instruct-HF", "meta-llama/Llama-3.1-70B", MatchMethod.FAMILY_SIZE),
]  # fmt: skip


@pytest.mark.parametrize(("name", "model_id", "method"), ALIASES)
def test_models_are_recognised_by_any_name_and_the_method_is_recorded(name, model_id, method) -> None:
    match = match_base_model(name)
    if model_id is None:
        assert match is None
        return
    assert match is not None and match.model.model_id == model_id and match.method is method


@pytest.mark.parametrize(
    "name",
    ["meta-llama/Llama-3.1-40B", "llama-3-18b", "meta-textgeneration-llama-3-1-70b-instruct-405b-distilled",
     "Qwen/Qwen3-30B", "Qwen/Qwen3-235B", "google/gemma-3-270m", "meta-llama/Llama-3.2-11B-Vision-Instruct",
     "gpt-oss-12b", "s3://bucket/llama-3.1-8b/llama-3.1-70b/", "s3://b/Hermes-3-Llama-3.1-8B/Hermes-3-Llama-3.1-70B/",
     "mistral.unknown-model-v1:0", "", None,
     "x" * 5000],
)  # fmt: skip
def test_a_name_never_matches_another_size_and_ambiguity_matches_nothing(name) -> None:
    assert match_base_model(name) is None


_STATED_SIZE = re.compile(r"(?:^|[-_a])(?:(\d+)x)?(\d+(?:\.\d+)?)([bm])(?=$|[-_])")


def test_every_catalog_name_states_the_size_of_its_model() -> None:
    # The matching guarantee rests on size tokens: every size a catalog name states must be the model's size
    for model in BASE_MODELS:
        actual = [p for p in (model.parameters, model.active_parameters) if p]
        for name in (model.model_id.split("/", 1)[-1], *model.aliases):
            for experts, size, unit in _STATED_SIZE.findall(name.lower()):
                stated = float(size) * (1e9 if unit == "b" else 1e6) * int(experts or 1)
                assert not actual or any(0.6 < stated / p < 1.5 for p in actual), (name, model.model_id)
