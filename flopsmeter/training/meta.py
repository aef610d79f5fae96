"""Measuring the model that runs: its own forward + backward under ``FlopCounterMode`` on the ``meta`` device.

A structural copy of the live model whose parameters are meta tensors (no memory, no data; a deep copy that maps
each parameter and buffer to an empty meta tensor of its shape) runs one sequence of a few lengths. The cost per
sequence, ``c + a*s + b*s^2``, gives the per-token cost ``a + b*s`` (``c``, a per-sequence cost such as a pooler,
is spread over the shortest length: counted high). It covers what the closed form does not know (multi-head latent
attention, unusual heads) and cross-checks it at start-up.

Mixture-of-experts layers run there with transformers' ``batched_mm`` experts (each token's top-k experts gathered
and multiplied in one batch: the router's top-k, no data-dependent shapes). What cannot run on ``meta`` is reported,
not guessed (other data-dependent code; 4-bit or partitioned parameters, ZeRO-3 / FSDP, whose local shapes are not
the model's): the closed form then counts alone.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import replace
from typing import Any

from flopsmeter.domain.errors import InvalidModelSpec
from flopsmeter.domain.methods import FineTuning
from flopsmeter.domain.shape import ModelShape
from flopsmeter.training.flop_formulas import flop_counter
from flopsmeter.training.model import Linear, ModelProfile, config_dict, describe_model, unwrap

logger = logging.getLogger("flopsmeter.training")

SEQ_LENS = (16, 32, 64)
DISAGREEMENT = 0.02  # closed form vs meta: a larger gap is a warning (and the larger figure is used)


Pair = tuple[float, float]  # per token: (constant, per_position)


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


def _cost(clone: Any, seq_len: int, *, backward: bool) -> float:
    import torch
    from torch.utils._python_dispatch import _disable_current_modes

    ids = torch.zeros((1, seq_len), dtype=torch.long, device="meta")
    grad = torch.enable_grad() if backward else torch.no_grad()
    with _disable_current_modes(), flop_counter() as counter, grad:  # not seen by a profiler around the run
        try:  # with a cache, transformers skips its packed-sequence check (a data-dependent .all())
            out = clone(input_ids=ids, use_cache=True)
        except TypeError:
            out = clone(input_ids=ids)
        logits = getattr(out, "logits", None)
        logits = out[0] if logits is None else logits
        if backward:
            logits.float().sum().backward()
    return float(counter.get_total_flops())


def _fit(costs: list[float]) -> tuple[float, float]:
    """Per-token (constant, per_position) from per-sequence costs at SEQ_LENS: c + a*s + b*s^2 solved exactly."""
    (s1, s2, s3), (f1, f2, f3) = SEQ_LENS, costs
    b = ((f3 - f2) / (s3 - s2) - (f2 - f1) / (s2 - s1)) / (s3 - s1)
    a = (f2 - f1) / (s2 - s1) - b * (s1 + s2)
    c = f1 - a * s1 - b * s1 * s1
    return a + max(0.0, c) / s1, b


class MetaModel:
    """The meta copy of a model, measured on demand (about 10 s per kind for a Llama-3-8B shape on two busy CPU
    cores; nothing for a tiny one)."""

    def __init__(self, model: Any, *, hook_ids: set[int] | None = None) -> None:
        self.clone = _meta_copy(model, hook_ids or set())
        self.clone.train()

    def training(self) -> Pair:
        """Forward + backward per token (raises when the model cannot run on meta)."""
        return _fit([_cost(self.clone, s, backward=True) for s in SEQ_LENS])

    def forward(self) -> Pair:
        """Forward only, per token."""
        return _fit([_cost(self.clone, s, backward=False) for s in SEQ_LENS])


def measure_on_meta(model: Any, *, hook_ids: set[int] | None = None) -> tuple[Pair, Pair]:
    """(training, forward) costs per token of ``model``, measured on meta."""
    meta = MetaModel(model, hook_ids=hook_ids)
    return meta.training(), meta.forward()


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


def disagreement(formula: Pair, measured: Pair, seq_len: int) -> float:
    """Relative gap (measured / formula - 1) of the per-token training cost at ``seq_len``."""
    f = formula[0] + formula[1] * seq_len
    m = measured[0] + measured[1] * seq_len
    return m / f - 1 if f else float("inf")


def _larger(a: Pair, b: Pair) -> Linear:
    return Linear(max(a[0], b[0]), max(a[1], b[1]))


def _approximate_shape(model: Any) -> ModelShape:
    """A shape for the record (and the head / recompute figures) when the closed form does not cover the model:
    the config read without the keys it rejects."""
    config = {k: v for k, v in config_dict(model).items() if k not in ("kv_lora_rank", "q_lora_rank")}
    return ModelShape.from_hf_config(config)


def _meta_only(model: Any, meta: MetaModel, training: Pair, tuning: FineTuning | None, reason: str) -> ModelProfile:
    inner = unwrap(model)
    shape = _approximate_shape(inner)
    profile = describe_model(inner, shape=shape, tuning=tuning)
    note = f"the closed form does not cover this model ({reason}); its FLOPs are measured on the meta device"
    return replace(profile, training=Linear(*training), forward=Linear(*meta.forward()), source="meta",
                   warnings=(note,), varlen_attention=profile.varlen_attention)  # fmt: skip


def profile_model(model: Any, *, tuning: FineTuning | None = None, meta: bool = True,
                  hook_ids: set[int] | None = None) -> ModelProfile:  # fmt: skip
    """The closed form, cross-checked against the model's own forward + backward on meta (``meta=True``).

    A disagreement beyond ``DISAGREEMENT`` is a warning and the larger coefficient is used; a model the closed
    form does not cover is measured on meta alone; one that neither covers raises the closed form's error.
    """
    closed: ModelProfile | None = None
    error: Exception | None = None
    try:
        closed = describe_model(model, tuning=tuning)
    except InvalidModelSpec as err:
        error = err
    if not meta:
        if closed is None:
            raise error or InvalidModelSpec("no profile")
        return closed
    inner = unwrap(model)
    reason = why_not_on_meta(inner)
    measured: tuple[MetaModel, Pair] | None = None
    if reason is None:
        try:
            meta_copy = MetaModel(inner, hook_ids=hook_ids)
            measured = meta_copy, meta_copy.training()
        except Exception as err:  # data-dependent code (MoE routing), an input the copy cannot take...
            reason = f"{type(err).__name__}: {str(err)[:160]}"
    if closed is None:
        if measured is None:
            raise InvalidModelSpec(f"{error}; measuring it on the meta device failed too ({reason})") from error
        return _meta_only(model, *measured, tuning, str(error))
    if measured is None:
        return replace(closed, source=f"formula (meta cross-check not possible: {reason})")
    meta_model, training = measured
    formula = (closed.training.constant, closed.training.per_position)
    gaps = [disagreement(formula, training, s) for s in (SEQ_LENS[0], 4096)]
    if max(abs(g) for g in gaps) <= DISAGREEMENT:  # the forward-only costs are measured only on disagreement
        return replace(closed, source="formula (meta cross-check agrees)")
    warning = (f"closed form and the model's own forward + backward on meta disagree ({gaps[0] * 100:+.1f} % at "
               f"{SEQ_LENS[0]} tokens, {gaps[1] * 100:+.1f} % at 4096): the larger figure is used")  # fmt: skip
    forward = _larger((closed.forward.constant, closed.forward.per_position), meta_model.forward())
    return replace(closed, training=_larger(formula, training), forward=forward, source="formula+meta",
                   warnings=(*closed.warnings, warning))  # fmt: skip
