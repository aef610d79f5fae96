"""What the meter needs to know about the model: its shape, what is trained, and its real parameter counts.

The FLOPs come from the model's config and the detected fine-tuning method through
``flopsmeter.domain.flops``, the same formulas as the pre-flight estimate. Parameter counts are taken from
the live tensors (after PEFT adapters are attached) at their *logical* size, whatever the storage:

* DeepSpeed ZeRO-3 partitions parameters and leaves ``numel() == 0``: ``ds_numel`` is the full size;
* FSDP (1) flattens and shards parameters into a ``FlatParameter``: ``_numels`` lists the original sizes;
  FSDP2 parameters are ``DTensor``s whose ``numel()`` is already the global size;
* bitsandbytes ``Params4bit`` packs two 4-bit values per byte (and more per element with a wider storage
  dtype): the logical size is ``quant_state.shape`` (else ``numel x 2 x element_size``, as transformers).

They are recorded and compared with the formula's counts (a large gap is reported as a warning: an
architecture the formula does not know).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from flopsmeter.domain.flops import ATTENTION_SCORES, LM_HEAD, FlopsPerToken, flops_per_token, trainable_params
from flopsmeter.domain.methods import ALL_LINEAR, FineTuning, lora_targets_from
from flopsmeter.domain.shape import ModelShape
from flopsmeter.errors import FlopsMeterError
from flopsmeter.training.heads import find_head, formula_params_with_head, shape_with_head
from flopsmeter.training.lora import lora_costs, lora_plan, uniform

PARAM_MISMATCH_WARNING = 0.02  # warn when live and formula parameter counts differ by more than this

_LAYER = re.compile(r"(?:^|\.)(?:layers|h|blocks|layer)\.(\d+)\.")
_ROUTER_NAMES = {"gate", "router"}


@dataclass(frozen=True)
class ParamCounts:
    total: int  # logical size of every parameter (LoRA adapters included)
    trainable: int
    adapters: int  # LoRA adapter parameters
    quantized_4bit: int  # parameters stored as 4-bit (logical size)
    partitioned: int  # parameters whose local storage was not their full size (ZeRO-3, FSDP)
    saved_copies: int = 0  # PEFT modules_to_save: the trainable copies (the original module is counted once)


def unwrap(model: Any) -> Any:
    """Strip DDP / FSDP / DeepSpeed engine / torch.compile wrappers (``.module`` / ``._orig_mod``)."""
    seen = 0
    while seen < 8:
        inner = getattr(model, "_orig_mod", None) or (
            getattr(model, "module", None) if type(model).__name__ in _WRAPPERS else None
        )
        if inner is None:
            return model
        model, seen = inner, seen + 1
    return model


_WRAPPERS = {
    "DistributedDataParallel",
    "DataParallel",
    "FullyShardedDataParallel",
    "DeepSpeedEngine",
    "PipelineEngine",
    "OptimizedModule",
}


def _is_4bit(p: Any) -> bool:
    return type(p).__name__ == "Params4bit" or getattr(p, "quant_state", None) is not None


def logical_numel(p: Any) -> tuple[int, bool]:
    """(logical element count, whether the local storage differed from it) for one parameter."""
    ds_numel = getattr(p, "ds_numel", None)
    if isinstance(ds_numel, int) and ds_numel > 0:
        return ds_numel, int(p.numel()) != ds_numel
    numels = getattr(p, "_numels", None)  # FSDP1 FlatParameter: original sizes, no padding
    if numels is not None:
        return int(sum(int(n) for n in numels)), True
    if _is_4bit(p):
        quant_state = getattr(p, "quant_state", None)
        shape = getattr(quant_state, "shape", None)
        if shape is not None:
            return int(math.prod(int(d) for d in shape)), False
        if getattr(p, "bnb_quantized", True):
            return int(p.numel()) * 2 * int(p.element_size()), False
    return int(p.numel()), False


def _fsdp_flat_params(model: Any) -> list[Any]:
    """FSDP1 flat parameters whose original parameters are exposed (``use_orig_params=True``)."""
    flats = []
    for module in model.modules():
        handle = getattr(module, "_handle", None)
        flat = getattr(handle, "flat_param", None)
        if flat is not None and getattr(flat, "_params", None) is not None and getattr(flat, "_numels", None):
            flats.append(flat)
    return flats


def named_logical_params(model: Any) -> Iterator[tuple[str, int, bool, bool, bool]]:
    """(name, logical numel, requires_grad, 4-bit, partitioned) for every distinct parameter."""
    covered: set[int] = set()
    for flat in _fsdp_flat_params(model):
        for i, (orig, numel) in enumerate(zip(flat._params, flat._numels, strict=False)):
            covered.add(id(orig))
            names = getattr(flat, "_fqns", None)
            name = names[i] if names and i < len(names) else f"fsdp_flat.{i}"
            yield name, int(numel), bool(orig.requires_grad), False, True
    for name, p in model.named_parameters():
        if id(p) in covered:
            continue
        numel, partitioned = logical_numel(p)
        yield name, numel, bool(p.requires_grad), _is_4bit(p), partitioned


def count_parameters(model: Any) -> ParamCounts:
    total = trainable = adapters = quantized = partitioned = saved = 0
    for name, numel, requires_grad, is_4bit, is_partitioned in named_logical_params(model):
        total += numel
        saved += numel if ".modules_to_save." in name else 0
        trainable += numel if requires_grad else 0
        adapters += numel if ".lora_" in name or name.startswith("lora_") else 0
        quantized += numel if is_4bit else 0
        partitioned += numel if is_partitioned else 0
    return ParamCounts(total, trainable, adapters, quantized, partitioned, saved)


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


def _lora_layers(model: Any) -> tuple[set[str], set[int], set[int]]:
    """Names, ranks and layer indices of modules that carry an active LoRA adapter (peft ``LoraLayer``)."""
    names: set[str] = set()
    ranks: set[int] = set()
    layers: set[int] = set()
    for full_name, module in model.named_modules():
        lora_a = getattr(module, "lora_A", None)
        r = getattr(module, "r", None)
        if lora_a is None or not isinstance(r, dict) or not len(lora_a):
            continue
        active = getattr(module, "active_adapters", None) or list(r)
        for adapter in active:
            if adapter in r and adapter in lora_a:
                ranks.add(int(r[adapter]))
                names.add(full_name.rsplit(".", 1)[-1])
                match = _LAYER.search(full_name + ".")
                if match:
                    layers.add(int(match.group(1)))
    return names, ranks, layers


def _module_key(param_name: str) -> str | None:
    """The formula's name for the module a (non-PEFT) parameter belongs to, or None for embeddings/head."""
    parts = param_name.split(".")
    if ".experts." in f".{param_name}.":
        return "experts"
    owner = parts[-2] if len(parts) >= 2 else parts[-1]
    if "norm" in owner or "layernorm" in owner:
        return "norms"
    if owner in _ROUTER_NAMES:
        return "router"
    return owner


def _uses_input_grads(model: Any) -> bool:
    """transformers' ``enable_input_require_grads()`` (PEFT + reentrant checkpointing) leaves this hook."""
    return any(getattr(m, "_require_grads_hook", None) is not None for m in model.modules())


def detect_fine_tuning(model: Any, shape: ModelShape) -> tuple[FineTuning, list[str]]:
    """Derive the ``FineTuning`` from the PEFT adapters present, else from ``requires_grad``."""
    warnings: list[str] = []
    params = list(named_logical_params(model))
    trainable_names = [name for name, _, grad, _, _ in params if grad]
    embeddings = any("embed_tokens" in n or "wte" in n or "word_embeddings" in n for n in trainable_names)
    lm_head = any("lm_head" in n or re.search(r"(?:^|\.)(?:score|classifier)\.", n) for n in trainable_names)
    input_grads = _uses_input_grads(model)
    lora_names, ranks, layers = _lora_layers(model)
    if lora_names:
        quantized = any(is4 for _, _, _, is4, _ in params)
        known = set().union(*(shape.linear_modules(i) for i in range(shape.num_layers)))
        targets = lora_targets_from(lora_names)
        if not targets <= known:
            warnings.append(
                f"LoRA on modules the formula does not know ({', '.join(sorted(targets - known))}); "
                f"counted as {ALL_LINEAR!r}"
            )
            targets = frozenset({ALL_LINEAR})
        if len(ranks) > 1:
            warnings.append(f"LoRA ranks differ across modules ({sorted(ranks)}); the largest is used")
        if layers and len(layers) < shape.num_layers:
            warnings.append(f"LoRA on {len(layers)} of {shape.num_layers} layers; counted as on every layer")
        tuning = FineTuning(
            method="qlora" if quantized else "lora",
            lora_rank=max(ranks),
            lora_targets=targets,
            train_embeddings=embeddings,
            train_lm_head=lm_head,
            input_requires_grad=input_grads,
        )
        return tuning, warnings
    if all(grad for _, _, grad, _, _ in params):
        return FineTuning(method="full"), warnings
    layer_ids: set[int] = set()
    modules: set[str] = set()
    for name in trainable_names:
        match = _LAYER.search(name)
        if match is None:
            continue
        layer_ids.add(int(match.group(1)))
        key = _module_key(name)
        if key:
            modules.add(key)
    if not layer_ids:
        warnings.append("only embeddings / LM head are trainable; counted as full fine-tuning (an overestimate)")
        return FineTuning(method="full"), warnings
    known = set().union(*(shape.linear_modules(i) for i in range(shape.num_layers))) | {"norms"}
    known |= {"router", "experts"} if shape.num_experts else set()
    chosen: frozenset[str] | None = frozenset(modules & known)
    if modules - known:
        warnings.append(
            f"trainable modules the formula does not know ({', '.join(sorted(modules - known))}); whole layers counted"
        )
        chosen = None
    elif chosen == frozenset(known):
        chosen = None
    tuning = FineTuning(
        method="spectrum",
        trainable_layers=frozenset(layer_ids),
        trainable_modules=chosen,
        train_embeddings=embeddings,
        train_lm_head=lm_head,
        input_requires_grad=input_grads,
    )
    return tuning, warnings


@dataclass(frozen=True)
class Linear:
    """``value = constant + per_position x seq_len`` per token."""

    constant: float
    per_position: float

    def flops(self, tokens: float, positions: float) -> float:
        return self.constant * tokens + self.per_position * positions


def _linear_in_seq(fn: Any) -> Linear:
    one, two = fn(1), fn(2)
    return Linear(one - (two - one), two - one)


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

    def per_token(self, seq_len: int) -> FlopsPerToken:
        return flops_per_token(self.shape, seq_len, self.tuning)

    def update_flops(self, tokens: float, positions: float, head_rows: float | None = None) -> float:
        """Forward + backward of ``tokens`` tokens; the head projects ``head_rows`` of them (default: all)."""
        skipped = 0.0 if head_rows is None else max(0.0, tokens - head_rows)
        return self.training.flops(tokens, positions) - self.head_training * skipped

    def forward_flops(self, tokens: float, positions: float, head_rows: float | None = None) -> float:
        """A forward-only pass (reference, generation, reward inference)."""
        skipped = 0.0 if head_rows is None else max(0.0, tokens - head_rows)
        return self.forward.flops(tokens, positions) - self.head_forward * skipped

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
            "flops_per_token": {"constant": self.training.constant, "per_position": self.training.per_position},
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
    forward = Linear(2 * per[0].forward - per[1].forward, per[1].forward - per[0].forward)
    recompute = Linear(2 * per[0].recompute - per[1].recompute, per[1].recompute - per[0].recompute)
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


def _varlen(model: Any) -> bool:
    """A variable-length (flash) attention kernel: packed documents attend only within themselves."""
    config = getattr(model, "config", None)
    implementation = str(getattr(config, "_attn_implementation", "") or "")
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
                   recompute=Linear(*costs.recompute), warnings=(*kept, note))  # fmt: skip


def describe_model(model: Any, *, shape: ModelShape | None = None, tuning: FineTuning | None = None) -> ModelProfile:
    """Profile a live model (after PEFT / quantisation / sharding): shape from its config, head and method detected."""
    inner = unwrap(model)
    expected: int | None = None
    if shape is None:
        shape = ModelShape.from_hf_config(config_dict(inner))
        head = find_head(_base(inner))
        if head is not None:
            expected = formula_params_with_head(shape, head)
            shape = shape_with_head(shape, head)
    expected = shape.total_params if expected is None else expected
    warnings: list[str] = []
    if tuning is None:
        tuning, found = detect_fine_tuning(inner, shape)
        warnings.extend(found)
    counts = count_parameters(inner)
    base_live = counts.total - counts.adapters - counts.saved_copies
    if expected and abs(base_live - expected) > PARAM_MISMATCH_WARNING * expected:
        warnings.append(
            f"live parameter count {base_live} differs from the formula's {expected} by "
            f"{(base_live / expected - 1) * 100:+.1f} %: the FLOPs may not fit this architecture"
        )
    checkpointing = _checkpointing(inner)
    profile = profile_from_shape(
        shape, tuning, params=counts, gradient_checkpointing=checkpointing, warnings=tuple(warnings)
    )
    if tuning.is_lora:
        profile = _exact_lora(profile, inner)
    if checkpointing and not _reentrant(inner):
        profile = replace(profile, recompute=non_reentrant_recompute(shape, profile.recompute))
    return replace(profile, varlen_attention=_varlen(_base(inner)))
