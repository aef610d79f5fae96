"""Tiny random-init models and data for the meter's tests and benchmarks (CPU, seconds).

Shared by ``tests/**/test_training_*`` and ``bench/accuracy.py`` / ``bench/overhead.py``. Models are built with
eager attention (and eager MoE experts) unless a test asks for SDPA: torch 2.13 counts SDPA on CPU and grouped-mm
experts as zero, so a ground truth around them needs the meter's extra formulas (``flop_formulas.flop_counter``).
"""

from __future__ import annotations

from typing import Any

VOCAB = 256

# Configs of tiny vision-language models (as config.json holds them), for the tower formulas and the pre-flight.
LLAVA_CONFIG = {
    "model_type": "llava", "vision_feature_layer": -2, "vision_feature_select_strategy": "default",
    "text_config": {"model_type": "llama", "hidden_size": 64},
    "vision_config": {"model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 64,
                      "num_hidden_layers": 3, "patch_size": 8, "num_channels": 3},
}  # fmt: skip
QWEN2_VL_CONFIG = {
    "model_type": "qwen2_vl",
    "vision_config": {"model_type": "qwen2_vl_vision", "depth": 2, "embed_dim": 32, "hidden_size": 64, "mlp_ratio": 2,
                      "patch_size": 4, "spatial_merge_size": 2, "temporal_patch_size": 2, "in_channels": 3},
}  # fmt: skip


def llama_config(*, hidden: int = 64, layers: int = 2, heads: int = 4, kv_heads: int = 4, inter: int = 128,
                 vocab: int = VOCAB) -> Any:  # fmt: skip
    from transformers import LlamaConfig

    return LlamaConfig(hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                       num_attention_heads=heads, num_key_value_heads=kv_heads, vocab_size=vocab,
                       max_position_embeddings=4096, tie_word_embeddings=False)  # fmt: skip


def moe_config(*, hidden: int = 64, layers: int = 2, experts: int = 4, top_k: int = 2, inter: int = 96) -> Any:
    from transformers import MixtralConfig

    return MixtralConfig(hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, vocab_size=VOCAB,
                         num_local_experts=experts, num_experts_per_tok=top_k, max_position_embeddings=4096,
                         tie_word_embeddings=False)  # fmt: skip


def from_config(auto: Any, config: Any, **kwargs: Any) -> Any:
    """``auto.from_config(config, **kwargs)``; transformers 4.x has no ``experts_implementation`` (its experts run
    the eager loop anyway), so it is dropped there."""
    try:
        return auto.from_config(config, **kwargs)
    except TypeError as err:
        if "experts_implementation" not in str(err):
            raise
        kwargs.pop("experts_implementation", None)
        return auto.from_config(config, **kwargs)


def build(config: Any, *, seed: int = 0, attention: str = "eager") -> Any:
    """A causal LM from ``config`` with ``attention`` (eager unless asked) and eager experts, random weights from
    ``seed``."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    config._attn_implementation = attention
    kwargs: dict[str, Any] = {"attn_implementation": attention}
    if getattr(config, "num_local_experts", 0):
        kwargs["experts_implementation"] = "eager"
    return from_config(AutoModelForCausalLM, config, **kwargs)


def add_lora(model: Any, *, rank: int = 4, targets: tuple[str, ...] = ("q_proj", "v_proj")) -> Any:
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=list(targets)))


def batches(
    count: int, *, batch: int = 4, seq: int = 32, pad_from: int | None = None, seed: int = 0
) -> list[dict[str, Any]]:
    """``count`` batches of random token ids with labels; if ``pad_from`` is set, positions from there on in
    the second row of each batch are padding (attention_mask 0)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        ids = torch.randint(0, VOCAB, (batch, seq), generator=gen)
        mask = torch.ones_like(ids)
        if pad_from is not None and batch > 1:
            mask[1, pad_from:] = 0
        labels = ids.masked_fill(mask == 0, -100)
        out.append({"input_ids": ids, "attention_mask": mask, "labels": labels})
    return out


class TokenDataset:
    """A map-style dataset of fixed-length random sequences (what ``Trainer`` needs)."""

    def __init__(self, rows: int, *, seq: int = 32, seed: int = 0, pad_every: int = 0) -> None:
        import torch

        gen = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, VOCAB, (rows, seq), generator=gen)
        self.mask = torch.ones_like(self.ids)
        if pad_every:
            self.mask[::pad_every, seq // 2 :] = 0  # some rows half padding

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def __getitem__(self, i: int) -> dict[str, Any]:
        ids, mask = self.ids[i], self.mask[i]
        return {"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, -100)}
