"""Training FLOPs of a transformer from its architecture (forward + backward matmuls, per token).

What is counted, and how (``FORMULA_VERSION`` names this set of rules; records cite it):

* Matrix multiplications only, at 2 FLOPs per multiply-add, as ``torch.utils.flop_counter.FlopCounterMode``
  counts them: the attention projections, the MLP (or the router and the top-k active experts of a
  mixture-of-experts layer, plus a shared expert where the model has one), the LM head, and the attention
  products QK^T and AV. Norms, activations, softmax, RoPE, embeddings lookups and the loss are not matmuls.
* Attention is counted at the full ``seq_len x seq_len`` size, as eager attention computes it (the causal
  mask is added after the product, so nothing is skipped). A FlashAttention kernel skips the masked half,
  so on such a kernel this figure is up to twice the attention work actually done: the conservative choice.
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
``router`` and ``experts`` here), which PEFT (0.18+) adds on its own when it resolves ``all-linear`` for
Mixtral- and Qwen3-MoE-style models; ``all-linear`` here therefore includes them on every MoE layer (on a model
PEFT leaves alone, such as Qwen2-MoE with PEFT 0.21, that overcounts: the conservative side). Such an
adapter makes the expert weights effectively trainable (weight-gradient matmuls per token) and PEFT rebuilds
``W + B @ A`` for every expert once per forward call: ``FlopsPerToken.per_forward_call``, a cost per
micro-batch rather than per token.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flopsmeter.domain.errors import InvalidFineTuning, InvalidModelSpec

FORMULA_VERSION = "arch-v1"

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

# Component names of FlopsPerToken.components.
ATTENTION_PROJECTIONS = "attention_projections"
ATTENTION_SCORES = "attention_scores"  # QK^T and AV
MLP = "mlp"
SHARED_EXPERT = "shared_expert"
LM_HEAD = "lm_head"
LORA_ADAPTERS = "lora_adapters"
COMPONENTS = (ATTENTION_PROJECTIONS, ATTENTION_SCORES, MLP, ROUTER, EXPERTS, SHARED_EXPERT, LM_HEAD, LORA_ADAPTERS)

# Hugging Face model types with a plain (ungated) MLP; everything else we accept is gated (SwiGLU/GeGLU).
_UNGATED_MODEL_TYPES = frozenset({"falcon", "gpt_neox", "gpt2", "gptj", "opt", "bloom", "phi", "starcoder2"})
# tie_word_embeddings defaults of the transformers config classes, for configs that leave it out.
_TIED_BY_DEFAULT = frozenset({"gemma", "gemma2", "gemma3_text", "falcon"})
_UNSUPPORTED_KEYS = {"kv_lora_rank": "multi-head latent attention (DeepSeek-V2/V3)"}


def _positive_int(value: Any, name: str, *, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidModelSpec(f"{name} must be an integer, got {value!r}")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise InvalidModelSpec(f"{name} must be an integer, got {value!r}")
    number = int(value)
    if number < 0 or (number == 0 and not allow_zero):
        raise InvalidModelSpec(f"{name} must be {'>= 0' if allow_zero else '>= 1'}, got {value!r}")
    return number


@dataclass(frozen=True)
class ModelShape:
    """The dimensions of a decoder-only transformer that decide its matmul FLOPs and parameter count."""

    hidden_size: int
    num_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool = False
    gated_mlp: bool = True
    num_experts: int = 0  # 0 = dense
    num_experts_per_tok: int = 0
    moe_intermediate_size: int = 0  # 0 = intermediate_size
    shared_expert_intermediate_size: int = 0  # Qwen2-MoE; 0 = no shared expert
    shared_expert_gate: bool = False  # Qwen2-MoE: a Linear(hidden, 1) gating the shared expert
    dense_layers: frozenset[int] = frozenset()  # MoE models: layers that use the dense MLP instead
    fused_qkv: bool = False  # one qkv_proj (Phi-3, Falcon) instead of q_proj, k_proj, v_proj
    fused_gate_up: bool = False  # one gate_up_proj (Phi-3)
    parallel_attention: bool = False  # attention and MLP both read the layer input (Falcon)
    qkv_bias: bool = False  # parameter count only (a bias add is not a matmul)
    norms_per_layer: int = 2  # parameter count only
    norm_bias: bool = False  # LayerNorm with a bias (Falcon); parameter count only
    qk_norm: bool = False  # per-head RMSNorm on queries and keys (Qwen3); parameter count only
    model_type: str = ""

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
                     "intermediate_size", "vocab_size"):  # fmt: skip
            _positive_int(getattr(self, name), name)
        for name in ("num_experts", "num_experts_per_tok", "moe_intermediate_size", "shared_expert_intermediate_size"):
            _positive_int(getattr(self, name), name, allow_zero=True)
        if self.num_attention_heads % self.num_key_value_heads:
            raise InvalidModelSpec(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                f"num_key_value_heads ({self.num_key_value_heads})"
            )
        if self.num_experts and not 1 <= self.num_experts_per_tok <= self.num_experts:
            raise InvalidModelSpec(
                f"num_experts_per_tok must be between 1 and num_experts ({self.num_experts}), "
                f"got {self.num_experts_per_tok}"
            )
        if any(not 0 <= i < self.num_layers for i in self.dense_layers):
            raise InvalidModelSpec(f"dense_layers must be layer indices below {self.num_layers}")
        if self.fused_gate_up and not self.gated_mlp:
            raise InvalidModelSpec("fused_gate_up needs a gated MLP")

    # ---- derived dimensions -------------------------------------------------------------------------
    @property
    def q_dim(self) -> int:
        return self.num_attention_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_key_value_heads * self.head_dim

    @property
    def expert_intermediate_size(self) -> int:
        return self.moe_intermediate_size or self.intermediate_size

    def is_moe_layer(self, layer: int) -> bool:
        return self.num_experts > 0 and layer not in self.dense_layers

    def linear_modules(self, layer: int) -> dict[str, tuple[int, int]]:
        """The ``nn.Linear`` modules of one decoder layer: name -> (in_features, out_features)."""
        h = self.hidden_size
        modules: dict[str, tuple[int, int]] = {}
        if self.fused_qkv:
            modules["qkv_proj"] = (h, self.q_dim + 2 * self.kv_dim)
        else:
            modules.update(q_proj=(h, self.q_dim), k_proj=(h, self.kv_dim), v_proj=(h, self.kv_dim))
        modules["o_proj"] = (self.q_dim, h)
        inter = self.intermediate_size
        if self.is_moe_layer(layer):
            if not self.shared_expert_intermediate_size:
                return modules
            inter = self.shared_expert_intermediate_size
            if self.shared_expert_gate:
                modules["shared_expert_gate"] = (h, 1)
        if self.fused_gate_up:
            modules["gate_up_proj"] = (h, 2 * inter)
        elif self.gated_mlp:
            modules.update(gate_proj=(h, inter), up_proj=(h, inter))
        else:
            modules["up_proj"] = (h, inter)
        modules["down_proj"] = (inter, h)
        return modules

    # ---- parameter counts -----------------------------------------------------------------------------
    def _embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)

    def _layer_params(self, layer: int, experts: int) -> int:
        h = self.hidden_size
        count = sum(i * o for i, o in self.linear_modules(layer).values())
        count += (self.q_dim + 2 * self.kv_dim if self.qkv_bias else 0) + self.norms_per_layer * self._norm_params
        count += 2 * self.head_dim if self.qk_norm else 0
        if self.is_moe_layer(layer):
            mats = 3 if self.gated_mlp else 2
            count += self.num_experts * h + experts * mats * h * self.expert_intermediate_size
        return count

    @property
    def _norm_params(self) -> int:
        return self.hidden_size * (2 if self.norm_bias else 1)

    @property
    def total_params(self) -> int:
        """All parameters: embeddings (and an untied LM head), every layer with every expert, norms."""
        experts = self.num_experts
        layers = sum(self._layer_params(i, experts) for i in range(self.num_layers))
        return self._embedding_params() + layers + self._norm_params

    @property
    def active_params(self) -> int:
        """Parameters used per token: as ``total_params`` but with only the top-k experts of each MoE layer."""
        experts = self.num_experts_per_tok
        layers = sum(self._layer_params(i, experts) for i in range(self.num_layers))
        return self._embedding_params() + layers + self._norm_params

    # ---- construction -----------------------------------------------------------------------------
    @classmethod
    def from_hf_config(cls, config: Mapping[str, Any]) -> ModelShape:
        """Read a Hugging Face ``config.json`` (Llama, Mistral, Qwen2/3, Gemma 2, Mixtral, Qwen-MoE, Phi-3, Falcon)."""
        if not isinstance(config, Mapping):
            raise InvalidModelSpec(f"a model config must be a JSON object, got {type(config).__name__}")
        if "hidden_size" not in config and isinstance(config.get("text_config"), Mapping):
            config = {**config["text_config"], "tie_word_embeddings": config.get("tie_word_embeddings", False)}
        model_type = str(config.get("model_type", ""))
        for key, what in _UNSUPPORTED_KEYS.items():
            if config.get(key):
                raise InvalidModelSpec(f"{what} is not supported by formula {FORMULA_VERSION} (config has {key!r})")

        def pick(*keys: str, default: Any = None) -> Any:
            for key in keys:
                if config.get(key) is not None:
                    return config[key]
            if default is None:
                raise InvalidModelSpec(f"model config ({model_type or 'unknown type'}) lacks {' / '.join(keys)!r}")
            return default

        hidden = _positive_int(pick("hidden_size", "n_embd", "d_model"), "hidden_size")
        layers = _positive_int(pick("num_hidden_layers", "n_layer", "num_layers"), "num_hidden_layers")
        heads = _positive_int(pick("num_attention_heads", "n_head"), "num_attention_heads")
        if model_type == "falcon" and not config.get("new_decoder_architecture"):
            kv_heads = 1 if config.get("multi_query", True) else heads  # the old layout ignores num_kv_heads
        else:
            kv_heads = pick("num_key_value_heads", "num_kv_heads", default=heads)
        head_dim = pick("head_dim", default=hidden // heads if hidden % heads == 0 else 0)
        if not head_dim:
            raise InvalidModelSpec(
                f"hidden_size {hidden} is not a multiple of num_attention_heads {heads}; give head_dim"
            )
        experts = pick("num_local_experts", "num_experts", default=0)
        dense_layers: frozenset[int] = frozenset()
        if experts:
            step = _positive_int(config.get("decoder_sparse_step") or 1, "decoder_sparse_step")
            only_mlp = config.get("mlp_only_layers") or []
            if not isinstance(only_mlp, list) or not all(isinstance(i, int) for i in only_mlp):
                raise InvalidModelSpec("mlp_only_layers must be a list of layer indices")
            dense_layers = frozenset(i for i in range(layers) if i in only_mlp or (i + 1) % step)
        fused_qkv = model_type in {"phi3", "falcon"}
        return cls(
            hidden_size=hidden,
            num_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=_positive_int(kv_heads, "num_key_value_heads"),
            head_dim=_positive_int(head_dim, "head_dim"),
            intermediate_size=_positive_int(
                pick("intermediate_size", "ffn_hidden_size", "n_inner", default=4 * hidden), "intermediate_size"
            ),
            vocab_size=_positive_int(pick("vocab_size"), "vocab_size"),
            tie_word_embeddings=bool(config.get("tie_word_embeddings", model_type in _TIED_BY_DEFAULT)),
            gated_mlp=model_type not in _UNGATED_MODEL_TYPES,
            num_experts=_positive_int(experts, "num_experts", allow_zero=True),
            num_experts_per_tok=_positive_int(
                config.get("num_experts_per_tok", 0) if experts else 0, "num_experts_per_tok", allow_zero=True
            ),  # fmt: skip
            moe_intermediate_size=_positive_int(
                config.get("moe_intermediate_size") or 0, "moe_intermediate_size", allow_zero=True
            ),  # fmt: skip
            shared_expert_intermediate_size=_positive_int(
                (config.get("shared_expert_intermediate_size") or 0) if experts else 0,
                "shared_expert_intermediate_size",
                allow_zero=True,
            ),
            shared_expert_gate=bool(experts and config.get("shared_expert_intermediate_size")),
            dense_layers=dense_layers,
            fused_qkv=fused_qkv,
            fused_gate_up=model_type == "phi3",
            parallel_attention=model_type == "falcon" and bool(config.get("parallel_attn", True)),
            qkv_bias=model_type in {"qwen2", "qwen2_moe"} or bool(config.get("attention_bias") or config.get("bias")),
            norms_per_layer=_norms_per_layer(model_type, config),
            norm_bias=model_type == "falcon",
            qk_norm=model_type in {"qwen3", "qwen3_moe"},
            model_type=model_type,
        )


def _norms_per_layer(model_type: str, config: Mapping[str, Any]) -> int:
    if model_type.startswith(("gemma2", "gemma3")):
        return 4
    if model_type == "falcon" and not config.get("new_decoder_architecture"):
        return 1 if config.get("parallel_attn", True) else 2
    return 2


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
    formula_version: str = FORMULA_VERSION

    def at(self, seq_len: int) -> float:
        """Training FLOPs per token at another sequence length (same model and fine-tuning)."""
        return self.constant + self.per_position * seq_len

    def flops_for(self, tokens: float, tokens_times_seq_len: float, forward_calls: float = 0) -> float:
        """Training FLOPs of ``sum(tokens)`` tokens whose sequences gave ``sum(tokens * seq_len)``, in
        ``forward_calls`` forward passes (micro-batches; only matters when ``per_forward_call`` is not zero)."""
        return self.constant * tokens + self.per_position * tokens_times_seq_len + self.per_forward_call * forward_calls


class _Tally:
    """Adds up matmuls as (constant, per-position) pairs for the forward and backward passes."""

    def __init__(self) -> None:
        self.forward = [0.0, 0.0]
        self.backward = [0.0, 0.0]
        self.components: dict[str, list[float]] = {}
        self.per_call = 0.0  # training FLOPs per forward call, independent of the tokens (PEFT parameter LoRA)

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
    t: _Tally, component: str, x_grad: bool, dims: tuple[int, int], plan: _LayerPlan, name: str, rank: int
) -> bool:
    """A (possibly LoRA-adapted) linear layer; returns whether its output needs a gradient."""
    d_in, d_out = dims
    out_grad = t.matmul(component, 2.0 * d_in * d_out, x_grad, name in plan.trainable)
    if name in plan.lora:
        t.matmul(LORA_ADAPTERS, 2.0 * d_in * rank, x_grad, True)  # lora_A
        t.matmul(LORA_ADAPTERS, 2.0 * rank * d_out, True, True)  # lora_B (its input depends on lora_A)
        out_grad = True
    return out_grad


def _attention(t: _Tally, shape: ModelShape, layer: int, x_grad: bool, plan: _LayerPlan, rank: int) -> bool:
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
    probs_grad = t.matmul(ATTENTION_SCORES, scores, q_grad, k_grad, positional=True)
    out_grad = t.matmul(ATTENTION_SCORES, scores, probs_grad, v_grad, positional=True)
    return _linear(t, proj, out_grad, mods["o_proj"], plan, "o_proj", rank)


def _dense_mlp(t: _Tally, component: str, shape: ModelShape, mods: Mapping[str, tuple[int, int]], x_grad: bool,
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


def _mlp(t: _Tally, shape: ModelShape, layer: int, x_grad: bool, plan: _LayerPlan, rank: int) -> bool:
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


def _walk(shape: ModelShape, tuning: FineTuning) -> tuple[_Tally, list[float]]:
    """Run the model's matmuls in order; also returns the per-layer forward FLOPs (constant, positional) that
    gradient checkpointing would recompute, i.e. those of layers whose output needs a gradient."""
    _check_tuning(shape, tuning)
    t = _Tally()
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
    )


def recompute_flops_per_token(shape: ModelShape, seq_len: int, tuning: FineTuning | None = None) -> float:
    """Extra forward FLOPs per token that per-layer gradient checkpointing does (reported, never added)."""
    return flops_per_token(shape, seq_len, tuning).recompute


def _check_count(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise InvalidModelSpec(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def training_flops(
    shape: ModelShape, seq_len: int, tokens: int, tuning: FineTuning | None = None, *, forward_calls: int | None = None
) -> float:
    """Training FLOPs of ``tokens`` tokens (padding included if it was computed) in sequences of ``seq_len``.

    ``forward_calls`` (micro-batches) only matters for LoRA on MoE router/experts; when not given it is
    ``ceil(tokens / seq_len)``, one sequence per micro-batch, the most calls and so the conservative figure.
    """
    fpt = flops_per_token(shape, seq_len, tuning)
    count = _check_count(tokens, "tokens")
    calls = math.ceil(count / fpt.seq_len) if forward_calls is None else _check_count(forward_calls, "forward_calls")
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
            count += shape.norms_per_layer * shape._norm_params + (2 * shape.head_dim if shape.qk_norm else 0)
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


def six_nd_flops(params: float, tokens: float) -> float:
    """The plain 6 x N x D approximation (no attention term, every parameter trained)."""
    return 6.0 * _check_count(params, "params") * _check_count(tokens, "tokens")


def aws_sample_flops(total_params: float, trainable_params: float, tokens: float) -> float:
    """The AWS sample meter's (4 x N_total + 2 x N_trainable) x D, for comparison."""
    total = _check_count(total_params, "total_params")
    trainable = _check_count(trainable_params, "trainable_params")
    return (4.0 * total + 2.0 * trainable) * _check_count(tokens, "tokens")
