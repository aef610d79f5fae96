"""Encoder-decoder models (T5, BART): the encoder and the decoder counted apart, measured on the ``meta`` device.

A call of ``r`` sequences with ``e`` encoder and ``d`` decoder tokens each costs

    call + r * (row + e1*e + e2*e^2 + d1*d + d2*d^2 + x*e*d)

(the encoder's tokens and self-attention; the decoder's tokens, self-attention and cross-attention over the encoder's
output). Seven calls of the meta copy (``meta.py``) fix the seven coefficients exactly, for a training pass and for
a forward-only one, and the fused attention kernel's recompute apart. A pass whose encoder output is given
(``encoder_outputs``: generation) runs the decoder only.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from flopsmeter.training.flop_formulas import flop_counter
from flopsmeter.training.meta_kernels import autocast_on_meta, fused_sdpa, mask_without_data

LENGTHS = ((16, 16), (32, 16), (64, 16), (16, 32), (16, 64), (32, 32))  # (encoder, decoder) tokens per sequence


@dataclass(frozen=True)
class Seq2SeqCost:
    """FLOPs of one call, as above; ``encoder_flops`` is the encoder's own part (tokens and self-attention)."""

    call: float = 0.0
    row: float = 0.0
    e1: float = 0.0
    e2: float = 0.0
    d1: float = 0.0
    d2: float = 0.0
    x: float = 0.0

    def encoder_flops(self, rows: float, encoder: float) -> float:
        return rows * (self.e1 * encoder + self.e2 * encoder * encoder)

    def decoder_flops(self, rows: float, encoder: float, decoder: float) -> float:
        return rows * (self.d1 * decoder + self.d2 * decoder * decoder + self.x * encoder * decoder)

    def flops(self, rows: float, encoder: float, decoder: float, *, encoder_runs: bool = True) -> float:
        total = self.call + rows * self.row + self.decoder_flops(rows, encoder, decoder)
        return total + (self.encoder_flops(rows, encoder) if encoder_runs else 0.0)

    def as_dict(self) -> dict[str, float]:
        return dict(vars(self))


@dataclass(frozen=True)
class Seq2SeqCosts:
    training: Seq2SeqCost  # what a training pass runs, the kernel's recompute included
    forward: Seq2SeqCost
    kernel_recompute: Seq2SeqCost  # part of ``training``: a fused attention backward's QK^T (reported apart)


def _quadratic(points: list[tuple[float, float]]) -> tuple[float, float, float]:
    (s1, f1), (s2, f2), (s3, f3) = points
    b = ((f3 - f2) / (s3 - s2) - (f2 - f1) / (s2 - s1)) / (s3 - s1)
    a = (f2 - f1) / (s2 - s1) - b * (s1 + s2)
    return f1 - a * s1 - b * s1 * s1, a, b


def fit(single: dict[tuple[int, int], float], double: float | None) -> Seq2SeqCost:
    """The coefficients from one-sequence calls at ``LENGTHS`` and (optionally) a two-sequence call at the first."""
    (e0, d0), far_e, far_d = LENGTHS[0], LENGTHS[2], LENGTHS[4]
    both = LENGTHS[5]
    x = (single[both] - single[(both[0], d0)] - single[(e0, both[1])] + single[(e0, d0)]) / (
        (both[0] - e0) * (both[1] - d0)
    )
    _, slope_e, e2 = _quadratic([(e, single[(e, d0)]) for e, _ in (LENGTHS[0], LENGTHS[1], far_e)])
    _, slope_d, d2 = _quadratic([(d, single[(e0, d)]) for _, d in (LENGTHS[0], LENGTHS[3], far_d)])
    e1, d1 = slope_e - x * d0, slope_d - x * e0
    c = single[(e0, d0)] - e1 * e0 - e2 * e0 * e0 - d1 * d0 - d2 * d0 * d0 - x * e0 * d0
    per_sequence = e1 * e0 + e2 * e0 * e0 + d1 * d0 + d2 * d0 * d0 + x * e0 * d0
    row = c if double is None else double - single[(e0, d0)] - per_sequence
    row = min(max(0.0, row), max(0.0, c))
    return Seq2SeqCost(max(0.0, c - row), row, e1, e2, d1, d2, x)


def _cost(clone: Any, lengths: tuple[int, int], *, backward: bool, rows: int, fused: bool) -> tuple[float, float]:
    import torch
    from torch.utils._python_dispatch import _disable_current_modes

    encoder = torch.zeros((rows, lengths[0]), dtype=torch.long, device="meta")
    decoder = torch.zeros((rows, lengths[1]), dtype=torch.long, device="meta")
    grad = torch.enable_grad() if backward else torch.no_grad()
    recompute: list[float] = []
    kernel = fused_sdpa(recompute) if fused else contextlib.nullcontext()
    with _disable_current_modes(), flop_counter() as counter, grad, kernel, mask_without_data(), autocast_on_meta():
        logits = clone(input_ids=encoder, decoder_input_ids=decoder).logits
        if backward and logits.requires_grad:
            logits.float().sum().backward()
    return float(counter.get_total_flops()), sum(recompute)


def measure(clone: Any, *, fused: bool) -> Seq2SeqCosts:
    """The training and forward costs of an encoder-decoder ``clone`` on meta (``meta.MetaModel.clone``)."""
    costs: dict[bool, dict[tuple[int, int], tuple[float, float]]] = {True: {}, False: {}}
    for backward in (True, False):
        for lengths in LENGTHS:
            costs[backward][lengths] = _cost(clone, lengths, backward=backward, rows=1, fused=fused)
    doubles = {b: _cost(clone, LENGTHS[0], backward=b, rows=2, fused=fused)[0] for b in (True, False)}
    training = fit({k: v[0] for k, v in costs[True].items()}, doubles[True])
    forward = fit({k: v[0] for k, v in costs[False].items()}, doubles[False])
    kernel = fit({k: v[1] for k, v in costs[True].items()}, None)
    return Seq2SeqCosts(training, forward, Seq2SeqCost(0.0, 0.0, 0.0, kernel.e2, 0.0, kernel.d2, kernel.x))


def is_encoder_decoder(model: Any) -> bool:
    return bool(getattr(getattr(model, "config", None), "is_encoder_decoder", False))


def approximate_config(config: dict[str, Any]) -> dict[str, Any]:
    """A decoder-only reading of an encoder-decoder config (the decoder's dimensions), for the record and the
    checkpointing recompute (which covers both stacks: the decoder's figure per token is an approximation)."""
    layers = config.get("num_decoder_layers") or config.get("decoder_layers") or config.get("num_layers")
    pick = {
        "hidden_size": config.get("d_model"),
        "num_hidden_layers": layers,
        "num_attention_heads": config.get("num_heads") or config.get("decoder_attention_heads"),
        "intermediate_size": config.get("d_ff") or config.get("decoder_ffn_dim"),
        "head_dim": config.get("d_kv"),
    }
    text = {k: v for k, v in config.items() if k != "is_encoder_decoder"}
    return {**text, **{k: v for k, v in pick.items() if v is not None}}
