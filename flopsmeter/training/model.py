"""What the meter needs to know about the model: its shape, what is trained, and what each pass costs.

The FLOPs come from the model's config and the detected fine-tuning method (``tuning.py``) through
``flopsmeter.domain.flops``, the same formulas as the pre-flight estimate, with the attention kernel the model
really runs (``config._attn_implementation``: a fused kernel's backward recomputes the scores, reported as
recompute). Parameter counts come from the live tensors at their logical size (``params.py``) and are compared
with the formula's (a large gap is a warning: an architecture the formula does not know). A model or PEFT method
the closed form does not cover is measured on the ``meta`` device instead (``meta.py``), whose per-sequence and
per-call costs (virtual tokens, prefixes, DoRA's weight norms) the profile carries next to the per-token ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from flopsmeter.domain.errors import InvalidModelSpec
from flopsmeter.domain.flops import ATTENTION_SCORES, LM_HEAD, flops_per_token, trainable_params
from flopsmeter.domain.methods import FineTuning
from flopsmeter.domain.shape import EAGER_ATTENTION, ModelShape, fused_attention_kernel
from flopsmeter.errors import FlopsMeterError
from flopsmeter.training.heads import find_head, formula_params_with_head, shape_with_head
from flopsmeter.training.lora import lora_costs, lora_plan, uniform
from flopsmeter.training.params import ParamCounts, count_parameters, unwrap
from flopsmeter.training.seq2seq import Seq2SeqCosts
from flopsmeter.training.towers import Tower, find_parts, tower_of
from flopsmeter.training.tuning import detect_fine_tuning, peft_method

PARAM_MISMATCH_WARNING = 0.02  # warn when live and formula parameter counts differ by more than this


class ClosedFormUnavailable(InvalidModelSpec):
    """The closed form does not describe this model or method (the meter measures it on ``meta`` instead)."""


def config_dict(model: Any) -> dict[str, Any]:
    """The model's config as a dict (``FlopsMeterError`` without a readable one)."""
    config = getattr(model, "config", None)
    if config is None:
        raise FlopsMeterError("the model has no .config: pass a ModelShape to the meter")
    if isinstance(config, dict):
        return config
    to_dict = getattr(config, "to_dict", None)
    if to_dict is None:
        raise FlopsMeterError(f"cannot read the model config ({type(config).__name__})")
    return dict(to_dict())


@dataclass(frozen=True)
class Linear:
    """``value = constant + per_position x seq_len`` per token."""

    constant: float
    per_position: float

    def flops(self, tokens: float, positions: float) -> float:
        return self.constant * tokens + self.per_position * positions

    @classmethod
    def of(cls, at_one: float, at_two: float) -> Linear:
        """From a per-token value at sequence lengths 1 and 2."""
        return cls(2 * at_one - at_two, at_two - at_one)

    def larger(self, other: Linear) -> Linear:
        return Linear(max(self.constant, other.constant), max(self.per_position, other.per_position))


ZERO = Linear(0.0, 0.0)


@dataclass(frozen=True)
class ModelProfile:
    shape: ModelShape
    tuning: FineTuning
    training: Linear  # forward + backward, per token
    forward: Linear
    recompute: Linear  # what gradient checkpointing adds (recorded, never added)
    params: ParamCounts | None
    gradient_checkpointing: bool
    formula_version: str
    warnings: tuple[str, ...] = field(default=())
    head_training: float = 0.0  # training FLOPs per token of the output head (LM head, or a classifier's)
    head_forward: float = 0.0  # its forward FLOPs per token
    source: str = "formula"  # "formula", "meta" (measured on the meta device) or "formula+meta" (the larger)
    varlen_attention: bool = False  # a variable-length attention kernel: packed documents attend only themselves
    kernel_recompute: Linear = ZERO  # a fused attention kernel's backward recomputing QK^T, per update token
    row_training: float = 0.0  # per sequence of an update pass (virtual tokens, prefixes): measured on meta
    row_forward: float = 0.0
    call_training: float = 0.0  # per forward call (DoRA's weight norms, PEFT parameter LoRA on experts)
    call_forward: float = 0.0
    attention: str = EAGER_ATTENTION  # config._attn_implementation
    peft_method: str | None = None  # the PEFT method of the active adapters (None: no adapters)
    seq2seq: Seq2SeqCosts | None = None  # an encoder-decoder model: each pass costed from both lengths (meta)
    tower: Tower | None = None  # a vision-language model's tower, counted per image (``towers.py``)

    def pass_extra(self, rows: float, *, backward: bool) -> float:
        """Per-sequence and per-call FLOPs of one forward call of ``rows`` sequences (on top of the per-token ones)."""
        if backward:
            return self.row_training * rows + self.call_training
        return self.row_forward * rows + self.call_forward

    def update_flops(self, tokens: float, positions: float, head_rows: float | None = None) -> float:
        """Forward + backward of ``tokens`` tokens; the head projects ``head_rows`` of them (default: all)."""
        skipped = 0.0 if head_rows is None else max(0.0, tokens - head_rows)
        return self.training.flops(tokens, positions) - self.head_training * skipped

    def forward_flops(self, tokens: float, positions: float, head_rows: float | None = None) -> float:
        """A forward-only pass (reference, generation, reward inference)."""
        skipped = 0.0 if head_rows is None else max(0.0, tokens - head_rows)
        return self.forward.flops(tokens, positions) - self.head_forward * skipped

    @property
    def kernel_measured(self) -> bool:
        """The meta measurement saw a fused attention kernel recompute QK^T."""
        k = self.seq2seq.kernel_recompute if self.seq2seq is not None else None
        return bool(self.kernel_recompute.per_position or (k is not None and (k.e2 or k.d2 or k.x)))

    def update_recompute(self, tokens: float, positions: float) -> float:
        """What an update pass recomputes: the attention kernel's backward, and checkpointed layers when on."""
        recompute = self.kernel_recompute.flops(tokens, positions)
        if self.gradient_checkpointing:
            recompute += self.recompute.flops(tokens, positions)
        return recompute

    def attention_convention(self) -> dict[str, Any]:
        """How attention is counted, for the record (a measured profile says what its kernel recomputed)."""
        fused = self.shape.fused_attention if self.source.startswith("formula") else self.kernel_measured
        return {
            "implementation": self.attention,
            "scores": "full square: seq_len x seq_len per sequence (the causal mask skips nothing in the count)",
            "backward": "a fused kernel: dQ, dK, dV counted as four products, the QK^T recompute in recompute_flops"
            if fused
            else "eager: the gradients of QK^T and AV that are needed, no recompute",
            "variable_length": self.varlen_attention,
        }

    def as_dict(self) -> dict[str, Any]:
        t = self.tuning
        return {
            "model_type": self.shape.model_type,
            "shape": {k: v for k, v in vars(self.shape).items() if isinstance(v, int | bool | str)},
            "formula_params_total": self.shape.total_params,
            "formula_params_active": self.shape.active_params,
            "formula_params_trainable": trainable_params(self.shape, t),
            "live_params": None if self.params is None else vars(self.params),
            "fine_tuning": {
                "method": t.method,
                "lora_rank": t.lora_rank if t.is_lora else None,
                "lora_targets": sorted(t.lora_targets) if t.is_lora else None,
                "trainable_layers": sorted(t.trainable_layers) if t.method == "spectrum" else None,
                "trainable_modules": None if t.trainable_modules is None else sorted(t.trainable_modules),
                "train_embeddings": t.embeddings_trainable,
                "train_lm_head": t.lm_head_trainable,
                "input_requires_grad": t.input_requires_grad,
            },
            "peft_method": self.peft_method,
            "flops_per_token": {"constant": self.training.constant, "per_position": self.training.per_position},
            "flops_per_sequence": self.row_training,
            "flops_per_forward_call": self.call_training,
            "vision_tower": None if self.tower is None else self.tower.as_dict(),
            "encoder_decoder": None
            if self.seq2seq is None
            else {
                "training": self.seq2seq.training.as_dict(),
                "forward": self.seq2seq.forward.as_dict(),
                "per_call": "call + rows x (row + e1*e + e2*e^2 + d1*d + d2*d^2 + x*e*d), e / d: encoder / decoder "
                "tokens per sequence",
            },
            "gradient_checkpointing": self.gradient_checkpointing,
            "formula_version": self.formula_version,
        }


def profile_from_shape(
    shape: ModelShape,
    tuning: FineTuning | None = None,
    *,
    params: ParamCounts | None = None,
    gradient_checkpointing: bool = False,
    warnings: tuple[str, ...] = (),
) -> ModelProfile:
    tuning = tuning or FineTuning()
    per = [flops_per_token(shape, s, tuning) for s in (1, 2)]
    training = Linear(per[0].constant, per[0].per_position)
    forward = Linear.of(per[0].forward, per[1].forward)
    recompute = Linear.of(per[0].recompute, per[1].recompute)
    return ModelProfile(
        shape,
        tuning,
        training,
        forward,
        recompute,
        params,
        gradient_checkpointing,
        per[0].formula_version,
        warnings,
        head_training=per[0].components.get(LM_HEAD, 0.0),
        head_forward=2.0 * shape.hidden_size * shape.vocab_size,
        kernel_recompute=Linear.of(per[0].attention_recompute, per[1].attention_recompute),
        call_training=per[0].per_forward_call,
        attention="sdpa" if shape.fused_attention else EAGER_ATTENTION,
    )


def _base(model: Any) -> Any:
    get_base = getattr(type(model), "get_base_model", None)  # peft PeftModel
    return get_base(model) if callable(get_base) else model


def _checkpointing(model: Any) -> bool:
    base = _base(model)
    for attr in ("is_activation_checkpointing", "is_gradient_checkpointing"):  # transformers 5 renamed it
        if hasattr(type(base), attr):
            return bool(getattr(base, attr))
    return False


def _reentrant(model: Any) -> bool:
    """How transformers checkpoints the layers: ``use_reentrant`` of the partial it installs (default True)."""
    for module in model.modules():
        func = getattr(module, "_gradient_checkpointing_func", None)
        keywords = getattr(func, "keywords", None)
        if isinstance(keywords, dict):
            return bool(keywords.get("use_reentrant", True))
    return True


def signature(model: Any) -> tuple[Any, ...]:
    """What decides a model's profile and can change after it was taken (a trainer turns on checkpointing, input
    gradients or adapters when ``train()`` starts): checkpointing, its kind, input gradients, trainable size."""
    from flopsmeter.training.tuning import uses_input_grads

    inner = unwrap(model)
    trainable = sum(int(p.numel()) for p in inner.parameters() if p.requires_grad)
    return _checkpointing(inner), _reentrant(inner), uses_input_grads(inner), trainable, peft_method(inner)


def non_reentrant_recompute(shape: ModelShape, recompute: Linear) -> Linear:
    """Non-reentrant checkpointing stops recomputing once backward has what it saved: the layer's last matmul (the
    MLP's down projection) is not run again. Its share of a layer's per-token forward is taken off."""
    one = replace(shape, num_layers=1, dense_layers=frozenset({0}) if 0 in shape.dense_layers else frozenset())
    per = flops_per_token(one, 1, FineTuning())
    layer_constant = (
        per.forward - 2.0 * shape.hidden_size * shape.vocab_size - per.components.get(ATTENTION_SCORES, 0.0) / 3.0
    )  # the scores' forward share at seq_len 1 is positional, not constant
    if one.is_moe_layer(0):
        down = 2.0 * shape.num_experts_per_tok * shape.expert_intermediate_size * shape.hidden_size
    else:
        down = 2.0 * shape.intermediate_size * shape.hidden_size
    if layer_constant <= 0:
        return recompute
    return Linear(recompute.constant * max(0.0, 1.0 - down / layer_constant), recompute.per_position)


def attention_implementation(model: Any) -> str:
    """``config._attn_implementation`` of the model (``eager`` when it names none)."""
    config = getattr(_base(model), "config", None)
    text = getattr(config, "get_text_config", None)
    if callable(text):
        config = text() or config
    return str(getattr(config, "_attn_implementation", "") or EAGER_ATTENTION)


def _varlen(implementation: str) -> bool:
    """A variable-length (flash) attention kernel: packed documents attend only within themselves."""
    return "flash" in implementation


def _exact_lora(profile: ModelProfile, inner: Any) -> ModelProfile:
    """LoRA on some layers, or with ranks that differ: counted as configured (``lora.py``)."""
    plan, outside = lora_plan(inner)
    if not plan or outside or uniform(plan, profile.shape.num_layers):
        return profile
    costs = lora_costs(profile.shape, plan, profile.tuning)
    layers = sorted(plan)
    note = (
        f"LoRA counted as configured: layers {layers}, ranks {sorted({r for m in plan.values() for r in m.values()})}"
    )
    kept = tuple(w for w in profile.warnings if not w.startswith(("LoRA ranks differ", "LoRA on ")))
    return replace(profile, training=Linear(*costs.training), forward=Linear(*costs.forward),
                   recompute=Linear(*costs.recompute), kernel_recompute=Linear(*costs.kernel_recompute),
                   warnings=(*kept, note))  # fmt: skip


@dataclass(frozen=True)
class _Read:
    shape: ModelShape
    expected: int  # the formula's parameter count for the live language model
    language: Any  # what carries the language model's parameters (the model, or a view of a VLM's)
    tower: Tower | None = None
    warnings: tuple[str, ...] = ()


class _Parts:
    """A view of some of a model's modules (a VLM's language model and LM head), for detection and counting."""

    def __init__(self, named: list[tuple[str, Any]]) -> None:
        self._named = [(f"{prefix}." if prefix else "", module) for prefix, module in named if module is not None]

    def named_modules(self) -> Any:
        for prefix, module in self._named:
            for name, sub in module.named_modules():
                yield f"{prefix}{name}".rstrip("."), sub

    def modules(self) -> Any:
        return (module for _, module in self.named_modules())

    def named_parameters(self) -> Any:
        for prefix, module in self._named:
            for name, param in module.named_parameters():
                yield f"{prefix}{name}", param

    def parameters(self) -> Any:
        return (param for _, param in self.named_parameters())


def _read(inner: Any, shape: ModelShape | None, *, fused: bool) -> _Read:
    """The language model's shape (with the head the model has), its parameters, and a vision tower if any."""
    if shape is not None:
        return _Read(shape, shape.total_params, inner)
    config = config_dict(inner)
    parts = find_parts(_base(inner))
    if parts is None:
        shape = ModelShape.from_hf_config(config)
        head = find_head(_base(inner))
        if head is None:
            return _Read(shape, shape.total_params, inner)
        return _Read(shape_with_head(shape, head), formula_params_with_head(shape, head), inner)
    shape = ModelShape.from_hf_config(config, text_only=True)
    get_head = getattr(_base(inner), "get_output_embeddings", None)
    head = get_head() if callable(get_head) else None
    language = _Parts([("model.language_model", parts.language), ("lm_head", head)])
    try:
        tower: Tower | None = tower_of(inner, config, parts, fused=fused)
    except InvalidModelSpec as err:
        note = f"{err}: the tower's FLOPs are not in the closed form; the measured steps find them"
        return _Read(shape, shape.total_params, language, None, (note,))
    return _Read(replace(shape, ignored_towers=()), shape.total_params, language, tower)


def describe_model(model: Any, *, shape: ModelShape | None = None, tuning: FineTuning | None = None,
                   closed_form_only: bool = True) -> ModelProfile:  # fmt: skip
    """Profile a live model (after PEFT / quantisation / sharding): shape from its config, head and method detected.

    A PEFT method the closed form does not count exactly raises ``ClosedFormUnavailable`` unless
    ``closed_form_only=False`` (then the profile is the closest closed form, for figures measured elsewhere).
    """
    inner = unwrap(model)
    method = peft_method(inner)
    if closed_form_only and tuning is None and method is not None and not method.closed_form:
        raise ClosedFormUnavailable(f"PEFT method {method.name}: the closed form does not count it exactly")
    implementation = attention_implementation(inner)
    fused = fused_attention_kernel(implementation)
    read = _read(inner, shape, fused=fused)
    shape = replace(read.shape, fused_attention=fused)
    warnings = list(read.warnings)
    if tuning is None:
        tuning, found = detect_fine_tuning(read.language, shape)
        warnings.extend(found)
    if read.tower is not None and read.tower.backward and not tuning.input_requires_grad:
        tuning = replace(tuning, input_requires_grad=True)  # image tokens come from trainable weights
    counts = count_parameters(inner)
    language = count_parameters(read.language) if read.language is not inner else counts
    base_live = language.total - language.adapters - language.saved_copies
    if read.expected and abs(base_live - read.expected) > PARAM_MISMATCH_WARNING * read.expected:
        warnings.append(
            f"live parameter count {base_live} differs from the formula's {read.expected} by "
            f"{(base_live / read.expected - 1) * 100:+.1f} %: the FLOPs may not fit this architecture"
        )
    checkpointing = _checkpointing(inner)
    profile = profile_from_shape(
        shape, tuning, params=counts, gradient_checkpointing=checkpointing, warnings=tuple(warnings)
    )
    profile = replace(profile, tower=read.tower)
    if tuning.is_lora:
        profile = _exact_lora(profile, inner)
    if checkpointing and not _reentrant(inner):
        profile = replace(profile, recompute=non_reentrant_recompute(shape, profile.recompute))
    return replace(profile, varlen_attention=_varlen(implementation), attention=implementation,
                   peft_method=None if method is None else method.name)  # fmt: skip
