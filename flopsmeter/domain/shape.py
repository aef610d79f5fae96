"""The shape of a decoder-only transformer, read from a Hugging Face ``config.json``.

``ModelShape`` holds the dimensions that decide a model's matmul FLOPs and parameter count (the counting
itself is ``flopsmeter.domain.flops``). ``ModelShape.from_hf_config`` reads Llama, Mistral, Qwen2/3,
Gemma 2/3, Mixtral, Qwen-MoE, Phi-3 and Falcon configs and refuses what the formulas do not cover.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flopsmeter.domain.errors import InvalidModelSpec

# Hugging Face model types with a plain (ungated) MLP; everything else we accept is gated (SwiGLU/GeGLU).
_UNGATED_MODEL_TYPES = frozenset({"falcon", "gpt_neox", "gpt2", "gptj", "opt", "bloom", "phi", "starcoder2"})
# tie_word_embeddings defaults of the transformers config classes, for configs that leave it out.
_TIED_BY_DEFAULT = frozenset({"gemma", "gemma2", "gemma3_text", "falcon"})
_UNSUPPORTED_KEYS = {
    "kv_lora_rank": "multi-head latent attention (DeepSeek-V2/V3)",
    "cross_attention_layers": "cross-attention layers to image features (Llama 3.2 Vision / mllama)",
    "interleave_moe_layer_step": "interleaved MoE layers with a shared expert (Llama 4)",
}
# Keys of a config with a non-text tower (vision or audio encoder) next to the language model.
TOWER_KEYS = ("vision_config", "audio_config", "speech_config", "vision_tower", "mm_vision_tower", "visual")


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
    # A fused attention kernel (anything but eager: SDPA, FlashAttention): its backward recomputes the scores and
    # computes dQ, dK, dV together (``flops.py``). Read from the config's attention implementation when it names one.
    fused_attention: bool = False
    ignored_towers: tuple[str, ...] = ()  # text_only: the config's towers the count leaves out (they do not run)

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
        count += (self.q_dim + 2 * self.kv_dim if self.qkv_bias else 0) + self.norms_per_layer * self.norm_params
        count += 2 * self.head_dim if self.qk_norm else 0
        if self.is_moe_layer(layer):
            mats = 3 if self.gated_mlp else 2
            count += self.num_experts * h + experts * mats * h * self.expert_intermediate_size
        return count

    @property
    def norm_params(self) -> int:
        return self.hidden_size * (2 if self.norm_bias else 1)

    @property
    def total_params(self) -> int:
        """All parameters: embeddings (and an untied LM head), every layer with every expert, norms."""
        experts = self.num_experts
        layers = sum(self._layer_params(i, experts) for i in range(self.num_layers))
        return self._embedding_params() + layers + self.norm_params

    @property
    def active_params(self) -> int:
        """Parameters used per token: as ``total_params`` but with only the top-k experts of each MoE layer."""
        experts = self.num_experts_per_tok
        layers = sum(self._layer_params(i, experts) for i in range(self.num_layers))
        return self._embedding_params() + layers + self.norm_params

    # ---- construction -----------------------------------------------------------------------------
    @classmethod
    def from_hf_config(cls, config: Mapping[str, Any], *, text_only: bool = False) -> ModelShape:
        """Read a Hugging Face ``config.json`` (Llama, Mistral, Qwen2/3, Gemma 2/3, Mixtral, Qwen-MoE, Phi-3, Falcon).

        A config with a vision or audio tower is refused: the formulas count the language model, and a tower's
        FLOPs per image or second of audio are not modelled. ``text_only=True`` (a run that feeds no images or
        audio, so the tower never runs) counts the language model and names the towers in ``ignored_towers``.
        """
        if not isinstance(config, Mapping):
            raise InvalidModelSpec(f"a model config must be a JSON object, got {type(config).__name__}")
        if config.get("is_encoder_decoder"):
            raise InvalidModelSpec(
                f"an encoder-decoder model ({config.get('model_type') or 'unknown type'}): the closed form counts "
                "decoder-only transformers; the meter and the pre-flight measure it on the meta device"
            )
        config, towers = _language_model_config(config, text_only=text_only)
        model_type = str(config.get("model_type", ""))
        for key, what in _UNSUPPORTED_KEYS.items():
            if config.get(key):
                raise InvalidModelSpec(f"{what} is not supported by the FLOPs formulas (config has {key!r})")

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
            fused_attention=fused_attention_kernel(
                config.get("_attn_implementation") or config.get("attn_implementation")
            ),
            ignored_towers=towers,
        )


EAGER_ATTENTION = "eager"


def fused_attention_kernel(implementation: Any) -> bool:
    """Whether an attention implementation (``config._attn_implementation``) is a fused kernel: anything named but
    ``eager`` (``sdpa``, ``flash_attention_2`` / ``_3``, ``flex_attention``, a hub kernel). Not named: eager."""
    return bool(implementation) and str(implementation) != EAGER_ATTENTION


def _attention_implementation(config: Mapping[str, Any]) -> Any:
    return config.get("_attn_implementation") or config.get("attn_implementation")


def _language_model_config(config: Mapping[str, Any], *, text_only: bool) -> tuple[Mapping[str, Any], tuple[str, ...]]:
    """The language model's part of a config, and the towers left out (refused unless ``text_only``)."""
    towers = tuple(key for key in TOWER_KEYS if config.get(key))
    if towers and not text_only:
        raise InvalidModelSpec(
            f"the config has a non-text tower ({', '.join(towers)}): its FLOPs per image/audio input are not counted "
            "by the formulas, so the estimate is refused rather than low; if the run feeds text only (the tower never "
            "runs), estimate the language model with text_only (CLI: --text-only)"
        )
    text = config.get("text_config")
    if isinstance(text, Mapping) and ("hidden_size" not in config or towers):
        config = {**text, "tie_word_embeddings": config.get("tie_word_embeddings", text.get("tie_word_embeddings"))}
        config = {k: v for k, v in config.items() if v is not None}
    return config, towers


def _norms_per_layer(model_type: str, config: Mapping[str, Any]) -> int:
    if model_type.startswith(("gemma2", "gemma3")):
        return 4
    if model_type == "falcon" and not config.get("new_decoder_architecture"):
        return 1 if config.get("parallel_attn", True) else 2
    return 2
