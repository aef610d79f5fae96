"""Which forward passes a training job runs, and what each one costs.

Every forward of the policy (the model being trained) and of the models that shape its update goes through a
forward pre-hook that reads only shapes (no host synchronisation) and files the pass under one category:

* ``update``: a policy forward with gradients (its backward follows);
* ``reference``: a forward-only scoring pass: a frozen reference model (DPO, KTO, GRPO's KL term), a
  distillation teacher, or the policy's own no-grad passes (the reference with its adapters disabled, GRPO's
  old log-probs);
* ``generation``: the policy's ``generate()`` (prefill and every decoding step, attention over the KV cache);
* ``reward_inference``: reward models scoring rollouts (ambiguous in the guideline: recorded apart, included);
* ``recompute``: work redone in backward (gradient checkpointing; TRL's fused LM head recomputes its logits).

Eval forwards are not counted: a policy in ``eval()`` mode is evaluating, and so are the other models then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flopsmeter.training.model import ModelProfile
from flopsmeter.training.tokens import TokenCounter

logger = logging.getLogger("flopsmeter.training")

REFERENCE = "reference"
GENERATION = "generation"
REWARD_INFERENCE = "reward_inference"
RECOMPUTE = "recompute"
ROLES = (REFERENCE, GENERATION, REWARD_INFERENCE)  # what an auxiliary model's forwards can be

Hook = Callable[[Any, tuple[Any, ...], dict[str, Any]], None]


@dataclass(frozen=True)
class PassShape:
    """One forward call, from shapes only."""

    rows: int
    seq_len: int  # query positions in this call
    span: int  # attention span of each query (seq_len, or the KV cache length + seq_len when decoding)
    head_rows: int  # positions the output head projects (logits_to_keep, TRL's fused head: the shifted labels)
    cached: bool  # a KV cache came with the call: generation
    fused_head: bool  # TRL's fused LM head: logits recomputed in backward

    @property
    def tokens(self) -> int:
        return self.rows * self.seq_len

    @property
    def positions(self) -> int:
        return self.tokens * self.span


def _cache_length(cache: Any) -> int:
    get = getattr(cache, "get_seq_length", None)
    if callable(get):
        return int(get())
    return 0


def read_pass(args: tuple[Any, ...], kwargs: dict[str, Any]) -> PassShape | None:
    """The shape of a forward call from its arguments, or None when it has no token input."""
    input_ids = kwargs.get("input_ids", args[0] if args else None)
    source = input_ids if input_ids is not None else kwargs.get("inputs_embeds")
    if source is None or not hasattr(source, "shape"):
        return None
    shape = tuple(int(d) for d in source.shape)
    if input_ids is None:
        shape = shape[:-1]  # inputs_embeds: (batch, seq, hidden)
    if len(shape) < 1:
        return None
    seq_len = shape[-1]
    rows = 1
    for dim in shape[:-1]:
        rows *= dim
    cache = kwargs.get("past_key_values", kwargs.get("cache"))  # transformers 5 renamed it "cache"
    mask = kwargs.get("attention_mask")
    span = seq_len
    if cache is not None:
        span = max(seq_len, _cache_length(cache) + seq_len)
        if mask is not None and hasattr(mask, "shape") and len(mask.shape) == 2:
            span = max(span, int(mask.shape[-1]))
    head_rows = rows * seq_len
    keep = kwargs.get("logits_to_keep")
    if isinstance(keep, int) and not isinstance(keep, bool) and keep > 0:
        head_rows = rows * min(keep, seq_len)
    fused = bool(kwargs.get("fused_lm_head"))
    if fused:
        head_rows = rows * max(seq_len - 1, 0) if kwargs.get("shift_labels") is None else rows * seq_len
    return PassShape(rows, seq_len, span, head_rows, cache is not None, fused)


@dataclass
class PassCounter:
    """Files each pass under its category in ``counter`` (FLOPs of forward-only passes converted on the spot)."""

    counter: TokenCounter
    on_error: Callable[[Exception], None]
    strict: bool = False
    generation_per_update: float = 0.0  # rollouts not seen (vLLM): estimated from the update passes' tokens

    def update(self, profile: ModelProfile, shape: PassShape, input_ids: Any, kwargs: dict[str, Any]) -> None:
        self.counter.observe(
            input_ids, kwargs.get("attention_mask"), kwargs.get("inputs_embeds"), kwargs.get("position_ids")
        )
        skipped = shape.tokens - shape.head_rows
        if skipped:
            self.counter.add("update_adjust", -profile.head_training * skipped)
        if shape.fused_head:
            self.counter.add(RECOMPUTE, profile.head_forward * shape.head_rows)
        if self.generation_per_update:
            flops = profile.forward_flops(shape.tokens, shape.positions, shape.rows * _decoded(shape))
            self.counter.add(GENERATION, flops * self.generation_per_update)

    def forward_only(self, profile: ModelProfile, shape: PassShape, category: str) -> None:
        self.counter.add(category, profile.forward_flops(shape.tokens, shape.positions, shape.head_rows))

    def guarded(self, fn: Callable[[], None]) -> None:
        """Run a count inside the user's forward: a failure must not break it (unless ``strict``)."""
        try:
            fn()
        except Exception as err:
            if self.strict:
                raise
            self.on_error(err)


def _decoded(shape: PassShape) -> int:
    """Completion tokens of a rollout scored in an update pass (``logits_to_keep``), at least one."""
    return max(1, shape.head_rows // max(1, shape.rows))


def policy_hook(passes: PassCounter, profile: Callable[[], ModelProfile]) -> Hook:
    """The policy's forward pre-hook (``with_kwargs=True``): update, generation or reference passes."""
    import torch

    def hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not module.training:
            return

        def count() -> None:
            shape = read_pass(args, kwargs)
            if shape is None:
                return
            if torch.is_grad_enabled():
                passes.update(profile(), shape, kwargs.get("input_ids", args[0] if args else None), kwargs)
            else:
                passes.forward_only(profile(), shape, GENERATION if shape.cached else REFERENCE)

        passes.guarded(count)

    return hook


def auxiliary_hook(passes: PassCounter, profile: Callable[[], ModelProfile], category: str,
                   policy_training: Callable[[], bool]) -> Hook:  # fmt: skip
    """A frozen model's forward pre-hook: every forward while the policy trains is one ``category`` pass."""

    def hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not policy_training():
            return

        def count() -> None:
            shape = read_pass(args, kwargs)
            if shape is not None:
                passes.forward_only(profile(), shape, GENERATION if shape.cached else category)

        passes.guarded(count)

    return hook
