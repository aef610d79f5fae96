"""Fine-tuning methods: what a run trains (full, LoRA/QLoRA adapters, Spectrum-style unfrozen layers)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from flopsmeter.domain.errors import InvalidFineTuning

METHODS = ("full", "lora", "qlora", "spectrum")
ALL_LINEAR = "all-linear"
# Mixture-of-experts parameters LoRA can target (PEFT ``target_parameters``); not nn.Linear modules.
ROUTER = "router"
EXPERTS = "experts"

# LoRA target names other architectures use for the same matmuls (Falcon).
MODULE_ALIASES: Mapping[str, str] = {
    "query_key_value": "qkv_proj",
    "dense": "o_proj",
    "dense_h_to_4h": "up_proj",
    "dense_4h_to_h": "down_proj",
}


@dataclass(frozen=True)
class FineTuning:
    """What a fine-tuning run trains.

    ``full``: every parameter. ``lora`` / ``qlora``: a frozen base plus rank-``lora_rank`` adapters on
    ``lora_targets`` in every layer (QLoRA's 4-bit base is dequantised for the matmul, so its FLOPs are
    LoRA's). ``spectrum``: the layers in ``trainable_layers`` (optionally only ``trainable_modules`` of
    them), the rest frozen. ``train_embeddings`` / ``train_lm_head`` default to True for ``full`` and False
    otherwise. ``input_requires_grad`` models PEFT's ``enable_input_require_grads()`` (used with reentrant
    gradient checkpointing): the embeddings' output then needs a gradient and every layer gets its input
    gradients.
    """

    method: str = "full"
    lora_rank: int = 16
    lora_targets: frozenset[str] = frozenset({"q_proj", "v_proj"})  # PEFT's default for Llama-style models
    trainable_layers: frozenset[int] = frozenset()
    trainable_modules: frozenset[str] | None = None
    train_embeddings: bool | None = None
    train_lm_head: bool | None = None
    input_requires_grad: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InvalidFineTuning(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.is_lora:
            if isinstance(self.lora_rank, bool) or not isinstance(self.lora_rank, int) or self.lora_rank < 1:
                raise InvalidFineTuning(f"lora_rank must be an integer >= 1, got {self.lora_rank!r}")
            if not self.lora_targets:
                raise InvalidFineTuning("LoRA needs at least one target module")
        if any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in self.trainable_layers):
            raise InvalidFineTuning("trainable_layers must be layer indices >= 0")

    @property
    def is_lora(self) -> bool:
        return self.method in ("lora", "qlora")

    @property
    def embeddings_trainable(self) -> bool:
        return self.method == "full" if self.train_embeddings is None else self.train_embeddings

    @property
    def lm_head_trainable(self) -> bool:
        return self.method == "full" if self.train_lm_head is None else self.train_lm_head


def lora_targets_from(names: Iterable[str] | str) -> frozenset[str]:
    """``"q_proj,v_proj"`` or an iterable of names -> a normalised target set (aliases mapped, blanks dropped)."""
    items = names.split(",") if isinstance(names, str) else names
    cleaned = (str(n).strip() for n in items)
    return frozenset(MODULE_ALIASES.get(n, n) for n in cleaned if n)


class GradientCheckpointing(StrEnum):
    """How a run checkpoints activations, as far as FLOPs are concerned (a pre-flight estimate's assumption)."""

    UNKNOWN = "unknown"  # not stated: assume reentrant (the conservative case)
    OFF = "off"
    REENTRANT = "reentrant"  # torch.utils.checkpoint(use_reentrant=True), the transformers default
    NON_REENTRANT = "non-reentrant"


def input_grads_in_every_layer(checkpointing: GradientCheckpointing | str) -> bool:
    """Whether every layer computes input gradients, frozen or not.

    Reentrant checkpointing gives a segment's parameters no gradient unless one of its inputs requires one, so a
    run with frozen layers (LoRA, Spectrum) makes the embeddings' output require a gradient (transformers /
    PEFT ``enable_input_require_grads()``): every layer then computes input gradients, up to ~40 % more FLOPs for
    a Spectrum-style run. Not stated means assumed, since assuming otherwise could make the estimate low.
    """
    return GradientCheckpointing(checkpointing) in (GradientCheckpointing.UNKNOWN, GradientCheckpointing.REENTRANT)
