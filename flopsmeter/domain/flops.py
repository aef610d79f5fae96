"""Training FLOPs of a transformer from its architecture (forward + backward matmuls, per token).

What is counted, and how (``FORMULA_VERSION`` names this set of rules; records cite it):

* Matrix multiplications only, at 2 FLOPs per multiply-add, as ``torch.utils.flop_counter.FlopCounterMode``
  counts them: the attention projections, the MLP (or the router and the top-k active experts of a
  mixture-of-experts layer, plus a shared expert where the model has one), the LM head, and the attention
  products QK^T and AV. Norms, activations, softmax, RoPE, embeddings lookups and the loss are not matmuls.
* Attention is counted at the full ``seq_len x seq_len`` size, as eager attention computes it (the causal
  mask is added after the product, so nothing is skipped) and as ``FlopCounterMode`` counts every attention
  kernel. A FlashAttention kernel skips the masked half, so on such a kernel this figure is up to twice the
  attention work actually done: the conservative choice.
* A fused attention kernel (``ModelShape.fused_attention``: SDPA's flash / memory-efficient / cuDNN kernels,
  FlashAttention 2/3) computes dQ, dK and dV together whenever any of them is needed, and recomputes the scores
  QK^T in its backward (torch counts that backward at 2.5x the forward). The four backward products are counted;
  the recompute is reported apart (``FlopsPerToken.attention_recompute``), like gradient-checkpointing recompute.
* Backward = gradient w.r.t. the matmul's input + gradient w.r.t. its weight. A frozen weight has no
  weight-gradient matmul. An activation that does not depend on any trainable parameter needs no gradient,
  so matmuls before the first trainable parameter have no backward at all (e.g. LoRA on q,v: in layer 0
  the k projection and the K side of QK^T get no input gradient).
* Gradient-checkpointing recompute (one more forward of every layer that runs a backward) is reported as a
  separate figure (``FlopsPerToken.recompute``) and never added: the guideline excludes it.

Per token, training FLOPs are linear in the sequence length: ``total = constant + per_position * seq_len``
(the attention products grow with the context, everything else does not). A meter can therefore keep two
sums, ``sum(tokens)`` and ``sum(tokens * seq_len)``, and convert to FLOPs only when it reports.

Module layout is that of Hugging Face ``transformers`` 5, where a mixture-of-experts router and its experts
are plain parameters, not ``nn.Linear``. LoRA reaches them only as PEFT ``target_parameters`` (targets
``router`` and ``experts`` here), which PEFT (0.21+) adds on its own when it resolves ``all-linear`` for
Mixtral- and Qwen3-MoE-style models; ``all-linear`` here therefore includes them on every MoE layer (on a model
PEFT leaves alone, such as Qwen2-MoE with PEFT 0.21, that overcounts: the conservative side). Such an
adapter makes the expert weights effectively trainable (weight-gradient matmuls per token) and PEFT rebuilds
``W + B @ A`` for every expert once per forward call: ``FlopsPerToken.per_forward_call``, a cost per
micro-batch rather than per token.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from flopsmeter.domain.errors import InvalidFineTuning, InvalidModelSpec
from flopsmeter.domain.methods import ALL_LINEAR, EXPERTS, ROUTER, FineTuning
from flopsmeter.domain.numbers import check_non_negative
from flopsmeter.domain.shape import ModelShape

FORMULA_VERSION = "arch-v1"

# Component names of FlopsPerToken.components.
ATTENTION_PROJECTIONS = "attention_projections"
ATTENTION_SCORES = "attention_scores"  # QK^T and AV
MLP = "mlp"
SHARED_EXPERT = "shared_expert"
LM_HEAD = "lm_head"
LORA_ADAPTERS = "lora_adapters"


@dataclass(frozen=True)
class FlopsPerToken:
    """Training FLOPs per token at one sequence length, and how they split.

    ``total = forward + backward = constant + per_position * seq_len``. ``components`` maps each
    component name to its training FLOPs per token (they sum to ``total``); ``attention`` is the
    ``attention_scores`` part (QK^T and AV). ``recompute`` is the extra forward that gradient
    checkpointing would do, not included in ``total``. ``per_forward_call`` is a cost per forward call
    (micro-batch) on top of the per-token figures; it is zero except for LoRA on MoE router/experts.
    """

    seq_len: int
    forward: float
    backward: float
    total: float
    attention: float
    constant: float
    per_position: float
    recompute: float
    components: Mapping[str, float] = field(default_factory=dict)
    per_forward_call: float = 0.0
    attention_recompute: float = 0.0  # a fused attention kernel's backward recomputing QK^T (not in ``total``)
    formula_version: str = FORMULA_VERSION

    def flops_for(self, tokens: float, tokens_times_seq_len: float, forward_calls: float = 0) -> float:
        """Training FLOPs of ``sum(tokens)`` tokens whose sequences gave ``sum(tokens * seq_len)``, in
        ``forward_calls`` forward passes (micro-batches; only matters when ``per_forward_call`` is not zero)."""
        return self.constant * tokens + self.per_position * tokens_times_seq_len + self.per_forward_call * forward_calls


class Tally:
    """Adds up matmuls as (constant, per-position) pairs for the forward and backward passes."""

    def __init__(self) -> None:
        self.forward = [0.0, 0.0]
        self.backward = [0.0, 0.0]
        self.components: dict[str, list[float]] = {}
        self.per_call = 0.0  # training FLOPs per forward call, independent of the tokens (PEFT parameter LoRA)
        self.kernel_recompute = 0.0  # per token and position: QK^T recomputed by a fused attention backward

    def matmul(
        self, component: str, flops: float, input_grad: bool, weight_grad: bool, *, positional: bool = False
    ) -> bool:
        """One matmul of ``flops`` forward FLOPs per token (per token and position if ``positional``).

        Backward repeats it once for the input's gradient and once for the weight's (or second operand's),
        each only when that operand needs a gradient. Returns whether the output needs a gradient.
        """
        slot = 1 if positional else 0
        back = flops * (int(input_grad) + int(weight_grad))
        self.forward[slot] += flops
        self.backward[slot] += back
        parts = self.components.setdefault(component, [0.0, 0.0])
        parts[slot] += flops + back
        return input_grad or weight_grad


@dataclass(frozen=True)
class _LayerPlan:
    trainable: frozenset[str]  # module names whose weight is trainable (plus "norms", "router", "experts")
    lora: frozenset[str]  # module names with a LoRA adapter


def _layer_plans(shape: ModelShape, tuning: FineTuning) -> list[_LayerPlan]:
    plans = []
    for layer in range(shape.num_layers):
        modules = set(shape.linear_modules(layer))
        whole = modules | {"norms", ROUTER, EXPERTS}
        if tuning.method == "full":
            plans.append(_LayerPlan(frozenset(whole), frozenset()))
        elif tuning.is_lora:
            params = {ROUTER, EXPERTS} if shape.is_moe_layer(layer) else set()
            targets = (
                modules | params if ALL_LINEAR in tuning.lora_targets else (modules | params) & tuning.lora_targets
            )
            plans.append(_LayerPlan(frozenset(), frozenset(targets)))
        elif layer in tuning.trainable_layers:
            chosen = whole if tuning.trainable_modules is None else whole & tuning.trainable_modules
            plans.append(_LayerPlan(frozenset(chosen), frozenset()))
        else:
            plans.append(_LayerPlan(frozenset(), frozenset()))
    return plans


def _check_tuning(shape: ModelShape, tuning: FineTuning) -> None:
    known = set().union(*(shape.linear_modules(i) for i in range(shape.num_layers)))
    if tuning.is_lora:
        moe_params = {ROUTER, EXPERTS} if shape.num_experts else set()
        unknown = sorted(tuning.lora_targets - known - moe_params - {ALL_LINEAR})
        if unknown:
            raise InvalidFineTuning(
                f"LoRA targets {', '.join(unknown)} are not linear modules of this model "
                f"(it has {', '.join(sorted(known | moe_params))}, or use {ALL_LINEAR!r})"
            )
    if tuning.method == "spectrum":
        if not tuning.trainable_layers:
            raise InvalidFineTuning("spectrum needs at least one trainable layer")
        too_high = sorted(i for i in tuning.trainable_layers if i >= shape.num_layers)
        if too_high:
            raise InvalidFineTuning(f"trainable layers {too_high} do not exist (the model has {shape.num_layers})")
        if tuning.trainable_modules is not None:
            unknown = sorted(tuning.trainable_modules - known - {"norms", ROUTER, EXPERTS})
            if unknown:
                raise InvalidFineTuning(f"trainable modules {', '.join(unknown)} are not modules of this model")


def _linear(
    t: Tally, component: str, x_grad: bool, dims: tuple[int, int], plan: _LayerPlan, name: str, rank: int
) -> bool:
    """A (possibly LoRA-adapted) linear layer; returns whether its output needs a gradient."""
    d_in, d_out = dims
    out_grad = t.matmul(component, 2.0 * d_in * d_out, x_grad, name in plan.trainable)
    if name in plan.lora:
        t.matmul(LORA_ADAPTERS, 2.0 * d_in * rank, x_grad, True)  # lora_A
        t.matmul(LORA_ADAPTERS, 2.0 * rank * d_out, True, True)  # lora_B (its input depends on lora_A)
        out_grad = True
    return out_grad


def _attention(t: Tally, shape: ModelShape, layer: int, x_grad: bool, plan: _LayerPlan, rank: int) -> bool:
    mods = shape.linear_modules(layer)
    proj = ATTENTION_PROJECTIONS
    if shape.fused_qkv:
        q_grad = k_grad = v_grad = _linear(t, proj, x_grad, mods["qkv_proj"], plan, "qkv_proj", rank)
    else:
        q_grad = _linear(t, proj, x_grad, mods["q_proj"], plan, "q_proj", rank)
        k_grad = _linear(t, proj, x_grad, mods["k_proj"], plan, "k_proj", rank)
        v_grad = _linear(t, proj, x_grad, mods["v_proj"], plan, "v_proj", rank)
    # Eager attention: K and V are repeated to every query head (GQA), then two batched matmuls at s x s.
    scores = 2.0 * shape.q_dim  # per token and per position of the sequence
    if shape.fused_attention and (q_grad or k_grad or v_grad):  # dQ, dK, dV in one kernel, QK^T recomputed
        t.matmul(ATTENTION_SCORES, scores, True, True, positional=True)
        out_grad = t.matmul(ATTENTION_SCORES, scores, True, True, positional=True)
        t.kernel_recompute += scores
    else:
        probs_grad = t.matmul(ATTENTION_SCORES, scores, q_grad, k_grad, positional=True)
        out_grad = t.matmul(ATTENTION_SCORES, scores, probs_grad, v_grad, positional=True)
    return _linear(t, proj, out_grad, mods["o_proj"], plan, "o_proj", rank)


def _dense_mlp(t: Tally, component: str, shape: ModelShape, mods: Mapping[str, tuple[int, int]], x_grad: bool,
               plan: _LayerPlan, rank: int) -> bool:  # fmt: skip
    if "gate_up_proj" in mods:
        mid_grad = _linear(t, component, x_grad, mods["gate_up_proj"], plan, "gate_up_proj", rank)
    elif shape.gated_mlp:
        gate_grad = _linear(t, component, x_grad, mods["gate_proj"], plan, "gate_proj", rank)
        up_grad = _linear(t, component, x_grad, mods["up_proj"], plan, "up_proj", rank)
        mid_grad = gate_grad or up_grad
    else:
        mid_grad = _linear(t, component, x_grad, mods["up_proj"], plan, "up_proj", rank)
    return _linear(t, component, mid_grad, mods["down_proj"], plan, "down_proj", rank)


def _mlp(t: Tally, shape: ModelShape, layer: int, x_grad: bool, plan: _LayerPlan, rank: int) -> bool:
    mods = shape.linear_modules(layer)
    if not shape.is_moe_layer(layer):
        return _dense_mlp(t, MLP, shape, mods, x_grad, plan, rank)
    h, k, n, inter = shape.hidden_size, shape.num_experts_per_tok, shape.num_experts, shape.expert_intermediate_size
    router_trainable = ROUTER in plan.trainable or ROUTER in plan.lora
    router_grad = t.matmul(ROUTER, 2.0 * h * n, x_grad, router_trainable)
    experts_trainable = EXPERTS in plan.trainable or EXPERTS in plan.lora
    fused = 2 if shape.gated_mlp else 1  # gate and up are one stacked parameter (transformers 5)
    mid_grad = t.matmul(EXPERTS, 2.0 * k * h * fused * inter, x_grad, experts_trainable)
    out_grad = t.matmul(EXPERTS, 2.0 * k * inter * h, mid_grad, experts_trainable)
    # PEFT parameter LoRA builds W + B @ A per forward call and backpropagates into B and A. For the 3-D expert
    # stacks PEFT 0.21 builds the product twice per call (FlopCounterMode sees 2 forward + 2 backward), for the
    # router once (3 in all). PEFT gives the fused gate_up stack rank ``fused x r``.
    if ROUTER in plan.lora:
        t.per_call += 3 * 2.0 * n * rank * h
    if EXPERTS in plan.lora:
        t.per_call += 4 * 2.0 * n * h * (fused * inter * fused * rank + rank * inter)
    out_grad = out_grad or router_grad  # routing weights scale the experts' outputs
    if shape.shared_expert_intermediate_size:
        out_grad = _dense_mlp(t, SHARED_EXPERT, shape, mods, x_grad, plan, rank) or out_grad
        if "shared_expert_gate" in mods:
            gate = _linear(t, SHARED_EXPERT, x_grad, mods["shared_expert_gate"], plan, "shared_expert_gate", rank)
            out_grad = out_grad or gate
    return out_grad


def _walk(shape: ModelShape, tuning: FineTuning) -> tuple[Tally, list[float]]:
    """Run the model's matmuls in order; also returns the per-layer forward FLOPs (constant, positional) that
    gradient checkpointing would recompute, i.e. those of layers whose output needs a gradient."""
    _check_tuning(shape, tuning)
    t = Tally()
    rank = tuning.lora_rank
    tied_trainable = tuning.embeddings_trainable or (shape.tie_word_embeddings and tuning.lm_head_trainable)
    embed_trainable = tied_trainable if shape.tie_word_embeddings else tuning.embeddings_trainable
    lm_head_trainable = tied_trainable if shape.tie_word_embeddings else tuning.lm_head_trainable
    h_grad = embed_trainable or tuning.input_requires_grad
    recompute = [0.0, 0.0]
    for layer, plan in enumerate(_layer_plans(shape, tuning)):
        before = list(t.forward)
        norms = "norms" in plan.trainable
        attn_grad = _attention(t, shape, layer, h_grad or norms, plan, rank)
        mlp_input_grad = h_grad or norms if shape.parallel_attention else h_grad or attn_grad or norms
        mlp_grad = _mlp(t, shape, layer, mlp_input_grad, plan, rank)
        h_grad = h_grad or attn_grad or mlp_grad
        if h_grad:
            recompute[0] += t.forward[0] - before[0]
            recompute[1] += t.forward[1] - before[1]
    final_norm = tuning.method == "full"
    t.matmul(LM_HEAD, 2.0 * shape.hidden_size * shape.vocab_size, h_grad or final_norm, lm_head_trainable)
    return t, recompute


def _check_seq_len(seq_len: int) -> int:
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
        raise InvalidModelSpec(f"sequence length must be an integer >= 1, got {seq_len!r}")
    return seq_len


def flops_per_token(shape: ModelShape, seq_len: int, tuning: FineTuning | None = None) -> FlopsPerToken:
    """Training (forward + backward) matmul FLOPs per token for sequences of ``seq_len`` tokens."""
    s = _check_seq_len(seq_len)
    t, recompute = _walk(shape, tuning or FineTuning())
    forward = t.forward[0] + t.forward[1] * s
    backward = t.backward[0] + t.backward[1] * s
    components = {name: parts[0] + parts[1] * s for name, parts in t.components.items()}
    return FlopsPerToken(
        seq_len=s,
        forward=forward,
        backward=backward,
        total=forward + backward,
        attention=components.get(ATTENTION_SCORES, 0.0),
        constant=t.forward[0] + t.backward[0],
        per_position=t.forward[1] + t.backward[1],
        recompute=recompute[0] + recompute[1] * s,
        components=components,
        per_forward_call=t.per_call,
        attention_recompute=t.kernel_recompute * s,
    )


def training_flops(
    shape: ModelShape, seq_len: int, tokens: int, tuning: FineTuning | None = None, *, forward_calls: int | None = None
) -> float:
    """Training FLOPs of ``tokens`` tokens (padding included if it was computed) in sequences of ``seq_len``.

    ``forward_calls`` (micro-batches) only matters for LoRA on MoE router/experts; when not given it is
    ``ceil(tokens / seq_len)``, one sequence per micro-batch, the most calls and so the conservative figure.
    """
    fpt = flops_per_token(shape, seq_len, tuning)
    count = check_non_negative(tokens, "tokens", InvalidModelSpec)
    if forward_calls is None:
        calls: float = math.ceil(count / fpt.seq_len)
    else:
        calls = check_non_negative(forward_calls, "forward_calls", InvalidModelSpec)
    return fpt.total * count + fpt.per_forward_call * calls


def trainable_params(shape: ModelShape, tuning: FineTuning | None = None) -> int:
    """Parameters that receive gradients (LoRA: the adapters; spectrum: the unfrozen layers), for comparisons."""
    tuning = tuning or FineTuning()
    _check_tuning(shape, tuning)
    if tuning.method == "full":
        return shape.total_params
    h, vocab = shape.hidden_size, shape.vocab_size
    count = 0
    if shape.tie_word_embeddings:
        count += vocab * h if tuning.embeddings_trainable or tuning.lm_head_trainable else 0
    else:
        count += vocab * h * (int(tuning.embeddings_trainable) + int(tuning.lm_head_trainable))
    for layer, plan in enumerate(_layer_plans(shape, tuning)):
        mods = shape.linear_modules(layer)
        count += sum(tuning.lora_rank * (mods[n][0] + mods[n][1]) for n in plan.lora if n in mods)
        count += sum(mods[n][0] * mods[n][1] for n in plan.trainable if n in mods)
        if "norms" in plan.trainable:
            count += shape.norms_per_layer * shape.norm_params + (2 * shape.head_dim if shape.qk_norm else 0)
            count += shape.q_dim + 2 * shape.kv_dim if shape.qkv_bias else 0
        if shape.is_moe_layer(layer):
            mats = 3 if shape.gated_mlp else 2
            count += shape.num_experts * h if ROUTER in plan.trainable else 0
            count += shape.num_experts * mats * h * shape.expert_intermediate_size if EXPERTS in plan.trainable else 0
            r, n, inter = tuning.lora_rank, shape.num_experts, shape.expert_intermediate_size
            count += r * (h + n) if ROUTER in plan.lora else 0
            fused = 2 if shape.gated_mlp else 1
            count += fused * r * n * (h + fused * inter) + r * n * (inter + h) if EXPERTS in plan.lora else 0
    return count
