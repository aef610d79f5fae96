"""Issue 23 point 6: a managed customization estimate never falls below a careful hand figure.

Each hand figure is computed here, explicitly, from the model's public shape (config.json: layers, hidden size,
query and key/value heads x head dim, MLP width, vocabulary) with the counting rules of ``flopsmeter.domain.flops``:
2 FLOPs per multiply-add, attention products QK^T and AV at the full seq_len x seq_len, a backward pass of twice
the forward where both operands need a gradient. Every technique's passes are those the public trainers run.
"""

from __future__ import annotations

import pytest

from flopsmeter import contract
from flopsmeter.domain.customization import (
    DECLARED_SOURCE,
    MAX_SEQUENCE_LENGTH,
    QLORA_NOTE,
    estimate_bedrock_job,
    estimate_serverless_job,
    sagemaker_technique,
)
from flopsmeter.domain.estimate import per_token_cost_from_parameters
from flopsmeter.domain.flops import flops_per_token
from flopsmeter.domain.methods import FineTuning
from flopsmeter.domain.model_configs import bundled_config_names, load_bundled_config
from flopsmeter.domain.shape import ModelShape

HUB = "arn:aws:sagemaker:us-east-1:aws:hub-content/SageMakerPublicHub/Model"
LLAMA_8B_ARN = f"{HUB}/meta-textgeneration-llama-3-1-8b-instruct/2.8.1"
BILLED = 50_000_000
RANK = 64  # the service's LoRA as the estimate assumes it: rank 64 on every linear layer


# ---- the hand figure ---------------------------------------------------------------------------------------------


def _matmul_params(d: int, layers: int, q: int, kv: int, ff: int, vocab: int) -> int:
    """Weights that multiply each token: q, k, v, o, gate, up, down in every layer, and the LM head."""
    return layers * (2 * d * q + 2 * d * kv + 3 * d * ff) + d * vocab


def _linears(d: int, q: int, kv: int, ff: int) -> list[tuple[int, int]]:
    return [(d, q), (d, kv), (d, kv), (q, d), (d, ff), (d, ff), (ff, d)]


def hand_per_token(shape: ModelShape, seq: int, *, lora_rank: int = 0) -> tuple[float, float]:
    """(forward, training) FLOPs per token; ``lora_rank``: frozen base, adapters of that rank on every linear layer,
    input gradients through every layer (PEFT with reentrant checkpointing)."""
    d, layers, vocab = shape.hidden_size, shape.num_layers, shape.vocab_size
    q, kv = shape.num_attention_heads * shape.head_dim, shape.num_key_value_heads * shape.head_dim
    n = _matmul_params(d, layers, q, kv, shape.intermediate_size, vocab)
    attention = 4.0 * layers * q * seq  # QK^T and AV, forward
    if not lora_rank:
        return 2.0 * n + attention, 6.0 * n + 3 * attention
    adapters = layers * sum(lora_rank * (i + o) for i, o in _linears(d, q, kv, shape.intermediate_size))
    return 2.0 * n + 2.0 * adapters + attention, 4.0 * n + 6.0 * adapters + 3 * attention


def hand_from_published(parameters: float, layers: int, width: int, seq: int, *, adapters: bool) -> float:
    """Training FLOPs per token of a model known by its published parameter count, layers and attention width."""
    return (4.0 if adapters else 6.0) * parameters + 12.0 * layers * width * seq


LLAMA_8B = ModelShape.from_hf_config(load_bundled_config("llama-3.1-8b"))


def _serverless(arn: str, technique: str, peft: str | None = None, seq: str | None = "4K") -> dict[str, object]:
    config = {"BaseModelArn": arn, "JobType": "FineTuning", "CustomizationTechnique": technique, "Peft": peft,
              "SequenceLength": seq}  # fmt: skip
    return {key: value for key, value in config.items() if value is not None}


# ---- sequence length in the parameter basis --------------------------------------------------------------------

# Public config.json of models the catalog knows by size only (no bundled config): parameters as the catalog lists
# them, layers, query heads x head dim.
PUBLISHED = {
    "meta-textgeneration-llama-3-1-405b-instruct": (405e9, 126, 128 * 128),
    "huggingface-llm-qwen3-8b": (8.2e9, 36, 32 * 128),
    "huggingface-llm-qwen3-32b": (32.8e9, 64, 64 * 128),
    "deepseek-llm-r1-distill-qwen-1-5b": (1.54e9, 28, 12 * 128),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
@pytest.mark.parametrize("seq", ["64K", "128K"])
@pytest.mark.parametrize("peft", [None, "LORA"])
def test_serverless_without_a_bundled_config_counts_attention_at_its_sequence_length(
    name: str, seq: str, peft: str | None
) -> None:
    est = estimate_serverless_job(_serverless(f"{HUB}/{name}", "SFT", peft, seq), BILLED)
    assert "parameters (" in est.estimate.cost_basis and f"attention at {est.seq_len} tokens" in est.estimate.cost_basis
    parameters, layers, width = PUBLISHED[name]
    hand = hand_from_published(parameters, layers, width, est.seq_len or 0, adapters=peft is not None) * BILLED
    assert est.estimate.flops >= hand


def test_without_a_sequence_length_the_parameter_basis_reads_the_longest_the_api_accepts() -> None:
    est = estimate_serverless_job(_serverless(f"{HUB}/huggingface-llm-qwen3-8b", "SFT", seq=None), BILLED)
    assert est.seq_len == MAX_SEQUENCE_LENGTH
    assert est.estimate.flops >= hand_from_published(8.2e9, 36, 4096, MAX_SEQUENCE_LENGTH, adapters=False) * BILLED


@pytest.mark.parametrize("config", bundled_config_names())
@pytest.mark.parametrize("seq", [4096, 65536, 131072, MAX_SEQUENCE_LENGTH])
def test_the_attention_width_bound_holds_for_every_bundled_architecture(config: str, seq: int) -> None:
    shape = ModelShape.from_hf_config(load_bundled_config(config))
    exact = flops_per_token(shape, seq, FineTuning())
    bound = per_token_cost_from_parameters(shape.active_params, adapters=False, seq_len=seq,
                                           total_parameters=shape.total_params)  # fmt: skip
    assert bound.training >= exact.total and bound.forward >= exact.forward


# ---- DPO: the prompt billed once, run with the chosen and with the rejected answer --------------------------------


@pytest.mark.parametrize("prompt_share", [0.3, 0.6, 0.95])
def test_dpo_covers_a_prompt_billed_once_and_run_twice(prompt_share: float) -> None:
    est = estimate_serverless_job(_serverless(LLAMA_8B_ARN, "DPO"), BILLED)
    forward, training = hand_per_token(LLAMA_8B, 4096)
    processed = BILLED * (1 + prompt_share)  # prompt + chosen, prompt + rejected: the prompt twice
    hand = (training + forward) * processed  # policy forward + backward, reference forward
    assert est.estimate.flops >= hand
    assert any("2 x the count processed" in w for w in est.warnings())


# ---- RLVR / GRPO: every pass the public implementations run -----------------------------------------------------


@pytest.mark.parametrize(("technique", "peft"), [("RLVR", None), ("RLVR", "LORA"), ("RLAIF", None)])
def test_rl_counts_generation_old_policy_reference_and_update(technique: str, peft: str | None) -> None:
    est = estimate_serverless_job(_serverless(LLAMA_8B_ARN, technique, peft), BILLED)
    forward, training = hand_per_token(LLAMA_8B, 4096, lora_rank=RANK if peft else 0)
    passes = 3 + (technique == "RLAIF")  # generation, old-policy log-probs, reference log-probs [, reward model]
    hand = (passes * forward + training) * BILLED
    assert est.estimate.flops >= hand
    assert {"generation", "old_policy", "reference", "update"} <= set(est.estimate.breakdown)
    assert any("old policy's log-probabilities" in w for w in est.warnings())


# ---- Peft: QLORA ------------------------------------------------------------------------------------------------


def test_qlora_is_read_as_lora_and_says_so() -> None:
    reading = sagemaker_technique("SFT", "QLORA")
    assert reading.adapters and reading.notes == (QLORA_NOTE,)
    qlora = estimate_serverless_job(_serverless(LLAMA_8B_ARN, "SFT", "QLORA"), BILLED)
    lora = estimate_serverless_job(_serverless(LLAMA_8B_ARN, "SFT", "LORA"), BILLED)
    assert qlora.estimate.flops == lora.estimate.flops and qlora.reading.adapters
    assert not any("not known" in w for w in qlora.warnings())
    assert qlora.estimate.flops >= hand_per_token(LLAMA_8B, 4096, lora_rank=RANK)[1] * BILLED


# ---- a declared token count where AWS reports none --------------------------------------------------------------


def test_bedrock_declared_tokens_replace_the_dataset_bound() -> None:
    job = {"baseModelArn": "arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-1-8b-instruct-v1:0",
           "customizationType": "FINE_TUNING", "hyperParameters": {"epochCount": "2"}}  # fmt: skip
    bound = estimate_bedrock_job(job)
    declared = estimate_bedrock_job(job, "200000000")
    assert bound.needs_declaration and not declared.needs_declaration
    assert declared.estimate.tokens.tokens == 200_000_000 and declared.estimate.tokens.known
    assert "flopsmeter:declared-tokens" in declared.estimate.tokens.basis
    hand = hand_per_token(LLAMA_8B, 131072)[1] * 200_000_000  # Bedrock states no sequence length: the longest
    assert hand <= declared.estimate.flops < bound.estimate.flops


@pytest.mark.parametrize(
    ("billable", "declared", "tokens", "known"),
    [(None, "1e8", 100_000_000, True), (0, "1e8", 100_000_000, True), (BILLED, "1e8", 100_000_000, True),
     (BILLED, "1000", BILLED, True), (0, None, None, False), (None, "lots", None, False), (None, "0", None, False)],
)  # fmt: skip
def test_serverless_token_readings(billable: object, declared: str | None, tokens: int | None, known: bool) -> None:
    est = estimate_serverless_job(_serverless(LLAMA_8B_ARN, "SFT"), billable, declared)
    assert est.estimate.tokens.known is known and est.needs_declaration is not known
    if tokens is not None:
        assert est.estimate.tokens.tokens == tokens
    if declared in ("lots", "0"):
        assert any("not a whole number > 0; ignored" in w for w in est.warnings())


def test_billable_token_count_zero_is_not_zero_flops() -> None:
    est = estimate_serverless_job(_serverless(LLAMA_8B_ARN, "SFT"), 0)
    assert est.estimate.flops > 1e25 and "BillableTokenCount 0" in est.estimate.tokens.basis


def test_the_declared_tokens_tag_is_the_contracts() -> None:
    assert contract.TAG_DECLARED_TOKENS in DECLARED_SOURCE
