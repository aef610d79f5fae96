"""Which forward passes a training job runs, and what each one costs.

Every counted forward (``hooks.py`` decides which module's call is the pass) is read from its arguments' shapes
only (no host synchronisation) and filed under one category:

* ``update``: a policy forward with gradients (its backward follows);
* ``reference``: a forward-only scoring pass: a frozen reference model (DPO, KTO, GRPO's KL term), a
  distillation teacher, the policy's own no-grad passes (the reference with its adapters disabled, GRPO's
  old log-probs), and work done before ``train()`` (reference log-probs precomputed by the trainer);
* ``generation``: the policy's ``generate()`` (prefill and every decoding step, attention over the KV cache);
* ``reward_inference``: reward models scoring rollouts (ambiguous in the guideline: recorded apart, included);
* ``recompute``: work redone in backward (gradient checkpointing; a fused attention kernel's QK^T; TRL's fused LM
  head recomputes its logits).

A pass of the whole model is counted with its head; a pass of the backbone alone (a trainer that projects the head
itself) without it; a call of the output head alone is the head's cost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flopsmeter.training.model import ModelProfile
from flopsmeter.training.seq2seq import Seq2SeqCosts
from flopsmeter.training.tokens import TokenCounter
from flopsmeter.training.towers import Tower

logger = logging.getLogger("flopsmeter.training")

UPDATE = "update"
REFERENCE = "reference"
GENERATION = "generation"
REWARD_INFERENCE = "reward_inference"
RECOMPUTE = "recompute"
UPDATE_ADJUST = "update_adjust"
ROLES = (REFERENCE, GENERATION, REWARD_INFERENCE)  # what an auxiliary model's forwards can be

# What a hooked module runs when its call is the counted pass.
WHOLE = "model"  # the model with its output head
BACKBONE = "backbone"  # the transformer without its head
HEAD = "head"  # the output head alone


@dataclass(frozen=True)
class PassShape:
    """One forward call, from shapes only."""

    rows: int
    seq_len: int  # query positions in this call
    span: int  # attention span of each query (seq_len, or the KV cache length + seq_len when decoding)
    head_rows: int  # positions the output head projects (logits_to_keep, TRL's fused head: the shifted labels)
    cached: bool  # a KV cache came with the call: generation
    fused_head: bool  # TRL's fused LM head: logits recomputed in backward
    decoder_len: int = 0  # an encoder-decoder call: decoder tokens per sequence (decoder ids, else the labels)
    encoder_given: bool = False  # the encoder's output came with the call: the encoder does not run

    @property
    def tokens(self) -> int:
        return self.rows * self.seq_len

    @property
    def positions(self) -> int:
        return self.tokens * self.span

    @property
    def bucket(self) -> int:
        """The attention span's power of two: a new bucket is a new shape for measured mode (``probe.py``)."""
        return max(1, self.span).bit_length()


def _cache_length(cache: Any) -> int:
    get = getattr(cache, "get_seq_length", None)
    if callable(get):
        return int(get())
    return 0


def _dims(source: Any, *, embeds: bool) -> tuple[int, ...] | None:
    if source is None or not hasattr(source, "shape"):
        return None
    shape = tuple(int(d) for d in source.shape)
    if embeds:
        shape = shape[:-1]  # inputs_embeds: (batch, seq, hidden)
    return shape or None


def read_pass(args: tuple[Any, ...], kwargs: dict[str, Any]) -> PassShape | None:
    """The shape of a forward call from its arguments, or None when it has no token input."""
    input_ids = kwargs.get("input_ids", args[0] if args else None)
    shape = _dims(input_ids, embeds=False)
    if shape is None and kwargs.get("inputs_embeds") is not None:
        input_ids = None
        shape = _dims(kwargs.get("inputs_embeds"), embeds=True)
    if shape is None:
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
    decoder = _decoder_len(kwargs)
    given = kwargs.get("encoder_outputs") is not None
    # generate()'s prefill: transformers before 5.1 passes no cache object yet, only the positions it will fill
    generating = cache is not None or (kwargs.get("cache_position") is not None and kwargs.get("use_cache") is True)
    return PassShape(rows, seq_len, span, head_rows, generating, fused, decoder, given)


def _decoder_len(kwargs: dict[str, Any]) -> int:
    for key, embeds in (("decoder_input_ids", False), ("decoder_inputs_embeds", True), ("labels", False)):
        dims = _dims(kwargs.get(key), embeds=embeds)
        if dims:
            return dims[-1]
    return 0


def read_head_pass(args: tuple[Any, ...], kwargs: dict[str, Any]) -> PassShape | None:
    """A call of the output head alone: ``hidden_states`` of (..., hidden); every row is projected."""
    hidden = args[0] if args else kwargs.get("input")
    shape = _dims(hidden, embeds=True)
    if shape is None:
        return None
    rows = 1
    for dim in shape:
        rows *= dim
    return PassShape(rows, 1, 1, rows, False, False)


def read(kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> PassShape | None:
    """The pass a hooked module of ``kind`` runs, from its call's arguments."""
    shape = read_head_pass(args, kwargs) if kind == HEAD else read_pass(args, kwargs)
    if shape is not None and kind == BACKBONE:
        return PassShape(shape.rows, shape.seq_len, shape.span, 0, shape.cached, False)
    return shape


@dataclass
class PassCounter:
    """Files each pass under its category in ``counter`` (FLOPs of forward-only passes converted on the spot)."""

    counter: TokenCounter
    on_error: Callable[[Exception], None]
    strict: bool = False
    generation_per_update: float = 0.0  # rollouts not seen (vLLM): estimated from the update passes' tokens

    def update(self, profile: ModelProfile, shape: PassShape, kwargs: dict[str, Any], input_ids: Any) -> None:
        """A pass with gradients of the model (or its backbone): tokens counted, FLOPs from them at sync."""
        self.counter.observe(
            input_ids, kwargs.get("attention_mask"), kwargs.get("inputs_embeds"), kwargs.get("position_ids")
        )
        if profile.seq2seq is not None:
            self._seq2seq(profile.seq2seq, shape, kwargs)
            return
        skipped = shape.tokens - shape.head_rows
        adjust = profile.pass_extra(shape.rows, backward=True) - profile.head_training * skipped
        if adjust:
            self.counter.add(UPDATE_ADJUST, adjust)
        if shape.fused_head:
            self.counter.add(RECOMPUTE, profile.head_forward * shape.head_rows)
        if self.generation_per_update:
            flops = profile.forward_flops(shape.tokens, shape.positions, shape.rows * _decoded(shape))
            self.counter.add(GENERATION, flops * self.generation_per_update)

    def images(self, tower: Tower, images: list[int], category: str) -> None:
        """A vision tower's call on ``images`` (patches each): forward, and backward in an update where it trains."""
        flops = [tower.image(patches) for patches in images]
        if category == UPDATE:
            backward = tower.backward
            self.counter.add(UPDATE_ADJUST, sum(f.forward + (f.backward if backward else 0.0) for f in flops))
            if backward:
                self.counter.add(RECOMPUTE, sum(f.recompute for f in flops))
        else:
            self.counter.add(category, sum(f.forward for f in flops))

    def head_only(self, profile: ModelProfile, shape: PassShape, category: str) -> None:
        """The output head called on its own: its training cost per row in an update, else its forward."""
        if category == UPDATE:
            self.counter.add(UPDATE_ADJUST, profile.head_training * shape.head_rows)
        else:
            self.counter.add(category, profile.head_forward * shape.head_rows)

    def _seq2seq(self, costs: Seq2SeqCosts, shape: PassShape, kwargs: dict[str, Any]) -> None:
        """An encoder-decoder update: the decoder's tokens counted too, the FLOPs from both lengths."""
        decoder = kwargs.get("decoder_input_ids")
        self.counter.observe(decoder if decoder is not None else kwargs.get("labels"))
        args = (shape.rows, shape.seq_len, shape.decoder_len)
        runs = not shape.encoder_given
        recompute = costs.kernel_recompute.flops(*args, encoder_runs=runs)  # part of what ran, reported apart
        self.counter.add(UPDATE_ADJUST, costs.training.flops(*args, encoder_runs=runs) - recompute)
        self.counter.add(RECOMPUTE, recompute)

    def forward_only(self, profile: ModelProfile, shape: PassShape, category: str) -> None:
        if profile.seq2seq is not None:
            args = (shape.rows, shape.seq_len, shape.decoder_len)
            self.counter.add(category, profile.seq2seq.forward.flops(*args, encoder_runs=not shape.encoder_given))
            return
        flops = profile.forward_flops(shape.tokens, shape.positions, shape.head_rows)
        self.counter.add(category, flops + profile.pass_extra(shape.rows, backward=False))

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
