"""Measuring the model that runs: its own forward + backward under ``FlopCounterMode`` on the ``meta`` device.

A structural copy of the live model whose parameters are meta tensors (no memory, no data; a deep copy that maps
each parameter and buffer to an empty meta tensor of its shape) runs one sequence of a few lengths and two
sequences of the shortest. The cost of a call of ``r`` sequences of ``s`` tokens, ``call + r * (row + a*s + b*s^2)``,
gives the per-token cost ``a + b*s`` and what a call costs per sequence (``row``: virtual tokens of prompt tuning,
prefixes, a pooler) and per call (``call``: DoRA's weight norms). It covers what the closed form does not know
(multi-head latent attention, PEFT methods other than LoRA, unusual heads) and cross-checks it at start-up.

On ``meta`` SDPA runs its unfused math path; a model whose attention is a fused kernel is measured with the fused
CPU kernel instead (the same FLOPs as the CUDA ones in torch's count: the backward recomputes QK^T), and that
recompute is measured apart. Mixture-of-experts layers run with transformers' ``batched_mm`` experts (each token's
top-k experts gathered and multiplied in one batch: the router's top-k, no data-dependent shapes). What cannot
run on ``meta`` is reported, not guessed (other data-dependent code; 4-bit or partitioned parameters, ZeRO-3 /
FSDP, whose local shapes are not the model's): the closed form then counts alone.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from dataclasses import dataclass, replace
from typing import Any

from flopsmeter.domain.errors import InvalidModelSpec
from flopsmeter.domain.methods import FineTuning
from flopsmeter.domain.shape import ModelShape, fused_attention_kernel
from flopsmeter.training.flop_formulas import flop_counter
from flopsmeter.training.meta_kernels import autocast_on_meta, fused_sdpa
from flopsmeter.training.model import (
    ClosedFormUnavailable,
    Linear,
    ModelProfile,
    attention_implementation,
    config_dict,
    describe_model,
)
from flopsmeter.training.params import unwrap
from flopsmeter.training.seq2seq import approximate_config, is_encoder_decoder
from flopsmeter.training.seq2seq import measure as measure_seq2seq

logger = logging.getLogger("flopsmeter.training")

SEQ_LENS = (16, 32, 64)
DISAGREEMENT = 0.02  # closed form vs meta: a larger gap is a warning (and the larger figure is used)
CHECK_LENGTHS = (SEQ_LENS[0], 4096)  # where the closed form and the meta figures are compared


@dataclass(frozen=True)
class Costs:
    """What one kind of pass costs, measured: per token (``per_token``), per sequence and per forward call, and the
    fused attention kernel's recompute per token (part of what ran, reported apart)."""

    per_token: Linear
    per_row: float = 0.0
    per_call: float = 0.0
    kernel_recompute: Linear = Linear(0.0, 0.0)

    def per_token_at(self, seq_len: int) -> float:
        """Per-token cost of one sequence of ``seq_len`` tokens in its own call (the cross-check's unit)."""
        per_sequence = (self.per_row + self.per_call) / seq_len
        return self.per_token.constant + self.per_token.per_position * seq_len + per_sequence


def _meta_copy(model: Any, hook_ids: set[int]) -> Any:
    import torch

    memo: dict[int, Any] = {}
    for p in model.parameters():
        memo[id(p)] = torch.nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
    for b in model.buffers():
        memo[id(b)] = torch.empty_like(b, device="meta")
    clone = copy.deepcopy(model, memo)
    for module in clone.modules():
        module.__dict__.pop("forward", None)  # patched forwards (TRL's fused head) are bound to the live model
        for hook_id in hook_ids & set(module._forward_pre_hooks):
            del module._forward_pre_hooks[hook_id]  # the meter's own hooks must not count the measurement
        for hook_id in hook_ids & set(module._forward_hooks):
            del module._forward_hooks[hook_id]
    disable = getattr(clone, "gradient_checkpointing_disable", None)
    if callable(disable):
        disable()
    _route_without_data(clone)
    return clone


def _route_without_data(clone: Any) -> None:
    """Mixture-of-experts layers: transformers' ``batched_mm`` experts gather each token's top-k experts' weights
    and run them as one batched matmul, with no data-dependent shape (the eager loop needs ``nonzero``). On meta
    that counts exactly the router's top-k experts per token."""
    for module in clone.modules():
        setter = getattr(module, "set_experts_implementation", None)
        config = getattr(module, "config", None)
        if callable(setter) and getattr(config, "_experts_implementation", None) not in (None, "batched_mm"):
            setter("batched_mm")
            return


def _call(clone: Any, ids: Any) -> Any:
    try:  # with a cache, transformers skips its packed-sequence check (a data-dependent .all())
        out = clone(input_ids=ids, use_cache=True)
    except TypeError:
        out = clone(input_ids=ids)
    logits = getattr(out, "logits", None)
    return out[0] if logits is None else logits


def _cost(clone: Any, seq_len: int, *, backward: bool, rows: int = 1, fused: bool = False) -> tuple[float, float]:
    """(FLOPs, fused-kernel recompute FLOPs) of one call of ``rows`` sequences of ``seq_len`` tokens."""
    import torch
    from torch.utils._python_dispatch import _disable_current_modes

    ids = torch.zeros((rows, seq_len), dtype=torch.long, device="meta")
    grad = torch.enable_grad() if backward else torch.no_grad()
    recompute: list[float] = []
    kernel = fused_sdpa(recompute) if fused else contextlib.nullcontext()
    with _disable_current_modes(), flop_counter() as counter, grad, kernel, autocast_on_meta():  # not seen around it
        logits = _call(clone, ids)
        if backward and logits.requires_grad:
            logits.float().sum().backward()
    return float(counter.get_total_flops()), sum(recompute)


def _quadratic(values: list[float]) -> tuple[float, float, float]:
    """(c, a, b) of ``c + a*s + b*s^2`` through the values at SEQ_LENS, solved exactly."""
    (s1, s2, s3), (f1, f2, f3) = SEQ_LENS, values
    b = ((f3 - f2) / (s3 - s2) - (f2 - f1) / (s2 - s1)) / (s3 - s1)
    a = (f2 - f1) / (s2 - s1) - b * (s1 + s2)
    return f1 - a * s1 - b * s1 * s1, a, b


def fit(single: list[tuple[float, float]], double: float) -> Costs:
    """Costs from one sequence at each of SEQ_LENS (FLOPs, recompute) and two sequences of the shortest (FLOPs).

    The per-sequence constant ``c`` of a one-sequence call is split into what a second sequence adds (``row``) and
    what the call costs once (``call``); a negative part (noise-free here, but a kernel may pad) is folded into the
    other, so the figure never drops."""
    c, a, b = _quadratic([flops for flops, _ in single])
    _, _, kernel_b = _quadratic([recompute for _, recompute in single])
    s1 = SEQ_LENS[0]
    row = double - single[0][0] - a * s1 - b * s1 * s1
    row = min(max(0.0, row), max(0.0, c))
    call = max(0.0, c - row)
    kernel = Linear(0.0, max(0.0, kernel_b))
    return Costs(Linear(a, b), per_row=row, per_call=call, kernel_recompute=kernel)


class MetaModel:
    """The meta copy of a model, measured on demand (about 10 s per kind for a Llama-3-8B shape on two busy CPU
    cores; nothing for a tiny one)."""

    def __init__(self, model: Any, *, hook_ids: set[int] | None = None) -> None:
        self.fused = fused_attention_kernel(attention_implementation(model))
        self.clone = _meta_copy(model, hook_ids or set())
        self.clone.train()

    def _costs(self, *, backward: bool) -> Costs:
        single = [_cost(self.clone, s, backward=backward, fused=self.fused) for s in SEQ_LENS]
        double, _ = _cost(self.clone, SEQ_LENS[0], backward=backward, rows=2, fused=self.fused)
        return fit(single, double)

    def training(self) -> Costs:
        """Forward + backward (raises when the model cannot run on meta); the kernel recompute is in ``per_token``
        as it ran, and apart in ``kernel_recompute``."""
        return self._costs(backward=True)

    def forward(self) -> Costs:
        """Forward only."""
        return self._costs(backward=False)


def why_not_on_meta(model: Any) -> str | None:
    """A reason the meta copy would not be the model, or None."""
    for p in model.parameters():
        if type(p).__name__ == "Params4bit" or getattr(p, "quant_state", None) is not None:
            return "4-bit parameters"
        if getattr(p, "ds_numel", None) or getattr(p, "_numels", None) is not None:
            return "partitioned parameters (ZeRO-3 / FSDP)"
        if type(p).__name__ == "DTensor" or type(getattr(p, "data", None)).__name__ == "DTensor":
            return "sharded DTensor parameters"
        if p.device.type == "meta":
            return "the model is already on meta"
    return None


def _counted(costs: Costs) -> Linear:
    """The per-token figure counted (what ran less the kernel's recompute, which is reported apart)."""
    t, k = costs.per_token, costs.kernel_recompute
    return Linear(t.constant - k.constant, t.per_position - k.per_position)


def _closed_costs(profile: ModelProfile) -> Costs:
    t, k = profile.training, profile.kernel_recompute
    ran = Linear(t.constant + k.constant, t.per_position + k.per_position)
    return Costs(ran, profile.row_training, profile.call_training, k)


def disagreement(closed: Costs, measured: Costs, seq_len: int) -> float:
    """Relative gap (measured / closed form - 1) of what a training pass of one ``seq_len``-token sequence runs."""
    f = closed.per_token_at(seq_len)
    return measured.per_token_at(seq_len) / f - 1 if f else float("inf")


def _approximate_shape(model: Any) -> ModelShape:
    """A shape for the record (and the head / recompute figures) when the closed form does not cover the model:
    the config read without the keys it rejects."""
    config = {k: v for k, v in config_dict(model).items() if k not in ("kv_lora_rank", "q_lora_rank")}
    return ModelShape.from_hf_config(config)


def _with_measured(profile: ModelProfile, training: Costs, forward: Costs) -> ModelProfile:
    return replace(profile, training=_counted(training), forward=forward.per_token,
                   kernel_recompute=training.kernel_recompute, row_training=training.per_row,
                   call_training=training.per_call, row_forward=forward.per_row,
                   call_forward=forward.per_call)  # fmt: skip


def _meta_only(model: Any, meta: MetaModel, training: Costs, tuning: FineTuning | None, reason: str) -> ModelProfile:
    inner = unwrap(model)
    try:
        shape: ModelShape | None = None
        closest = describe_model(inner, tuning=tuning, closed_form_only=False)
    except InvalidModelSpec:
        shape = _approximate_shape(inner)
        closest = describe_model(inner, shape=shape, tuning=tuning, closed_form_only=False)
    note = f"the closed form does not cover this model ({reason}); its FLOPs are measured on the meta device"
    return replace(_with_measured(closest, training, meta.forward()), source="meta", warnings=(note,))


def _larger_costs(a: Costs, b: Costs) -> Costs:
    return Costs(a.per_token.larger(b.per_token), max(a.per_row, b.per_row), max(a.per_call, b.per_call),
                 a.kernel_recompute.larger(b.kernel_recompute))  # fmt: skip


def _measure(inner: Any, hook_ids: set[int] | None) -> tuple[tuple[MetaModel, Costs] | None, str | None]:
    reason = why_not_on_meta(inner)
    if reason is not None:
        return None, reason
    try:
        meta_copy = MetaModel(inner, hook_ids=hook_ids)
        return (meta_copy, meta_copy.training()), None
    except Exception as err:  # data-dependent code (MoE routing), an input the copy cannot take...
        return None, f"{type(err).__name__}: {str(err)[:160]}"


def profile_model(model: Any, *, tuning: FineTuning | None = None, meta: bool = True,
                  hook_ids: set[int] | None = None) -> ModelProfile:  # fmt: skip
    """The closed form, cross-checked against the model's own forward + backward on meta (``meta=True``).

    A disagreement beyond ``DISAGREEMENT`` is a warning and the larger figures are used; a model or PEFT method
    the closed form does not cover is measured on meta alone; one that neither covers raises the closed form's
    error (a PEFT method that cannot be measured falls back to the closest closed form, with a warning).
    """
    if is_encoder_decoder(unwrap(model)):
        return _seq2seq_profile(unwrap(model), tuning, hook_ids)
    closed: ModelProfile | None = None
    error: InvalidModelSpec | None = None
    try:
        closed = describe_model(model, tuning=tuning)
    except InvalidModelSpec as err:
        error = err
    if not meta and closed is not None:
        return closed
    inner = unwrap(model)
    measured, reason = _measure(inner, hook_ids) if meta else (None, "meta_check=False")
    if closed is None:
        if measured is not None:
            return _meta_only(model, *measured, tuning, str(error))
        return _closest_or_raise(inner, tuning, error, reason)
    if measured is None:
        return replace(closed, source=f"formula (meta cross-check not possible: {reason})")
    return _cross_checked(closed, *measured)


def _seq2seq_profile(inner: Any, tuning: FineTuning | None, hook_ids: set[int] | None) -> ModelProfile:
    """An encoder-decoder model: measured on meta, encoder and decoder apart (``seq2seq.py``)."""
    reason = why_not_on_meta(inner)
    if reason is not None:
        raise InvalidModelSpec(f"an encoder-decoder model, and it cannot be measured on the meta device ({reason})")
    copy = MetaModel(inner, hook_ids=hook_ids)
    costs = measure_seq2seq(copy.clone, fused=copy.fused)
    shape = ModelShape.from_hf_config(approximate_config(config_dict(inner)))
    closest = describe_model(inner, shape=shape, tuning=tuning, closed_form_only=False)
    note = ("an encoder-decoder model: each pass is counted from its encoder and decoder lengths, measured on the meta "
            "device (the closed form counts decoder-only transformers)")  # fmt: skip
    zero = Linear(0.0, 0.0)
    return replace(closest, training=zero, forward=zero, kernel_recompute=zero, seq2seq=costs,
                   source="meta (encoder-decoder)", warnings=(note,))  # fmt: skip


def _closest_or_raise(inner: Any, tuning: FineTuning | None, error: InvalidModelSpec | None,
                      reason: str | None) -> ModelProfile:  # fmt: skip
    """Neither the closed form nor meta: a PEFT method gets the closest closed form (the first steps' measurement
    then says how close); an architecture the closed form cannot read raises."""
    if not isinstance(error, ClosedFormUnavailable):
        raise InvalidModelSpec(f"{error}; measuring it on the meta device failed too ({reason})") from error
    closest = describe_model(inner, tuning=tuning, closed_form_only=False)
    warning = (f"{error}, and it cannot be measured on the meta device ({reason}): counted with the closest closed "
               "form; the measured first steps say how close it is (the larger figure is used)")  # fmt: skip
    return replace(closest, source="formula (closest to a PEFT method)", warnings=(*closest.warnings, warning))


def _cross_checked(closed: ModelProfile, meta_model: MetaModel, training: Costs) -> ModelProfile:
    expected = _closed_costs(closed)
    gaps = [disagreement(expected, training, s) for s in CHECK_LENGTHS]
    if max(abs(g) for g in gaps) <= DISAGREEMENT:  # the forward-only costs are measured only on disagreement
        return replace(closed, source="formula (meta cross-check agrees)")
    short, long = CHECK_LENGTHS
    warning = (f"closed form and the model's own forward + backward on meta disagree ({gaps[0] * 100:+.1f} % at "
               f"{short} tokens, {gaps[1] * 100:+.1f} % at {long}): the larger figure is used")  # fmt: skip
    larger = _larger_costs(expected, training)
    forward = _larger_costs(Costs(closed.forward, closed.row_forward, closed.call_forward), meta_model.forward())
    return replace(_with_measured(closed, larger, forward), source="formula+meta",
                   warnings=(*closed.warnings, warning))  # fmt: skip
