"""What a live model trains: the fine-tuning method, read from its PEFT adapters or its ``requires_grad`` flags.

``peft_method`` names the PEFT method the model carries (from ``peft_config`` on a ``PeftModel`` or a transformers
model with adapters added, else from LoRA layers injected without a config). Plain LoRA (and rsLoRA, whose scaling
costs nothing) is counted by the closed form, layer by layer as configured (``lora.py``); every other method
(prompt tuning, prefix tuning, P-tuning, IA3, DoRA and the other LoRA variants, LoHa, ...) is measured on the
``meta`` device as it runs (``meta.py``), never counted as full fine-tuning. ``detect_fine_tuning`` gives the closed
form's ``FineTuning``: LoRA targets and ranks, else ``full`` or ``spectrum`` from ``requires_grad``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flopsmeter.domain.methods import ALL_LINEAR, FineTuning, lora_targets_from
from flopsmeter.domain.shape import ModelShape
from flopsmeter.training.params import named_logical_params

LAYER_INDEX = re.compile(r"(?:^|\.)(?:layers|h|blocks|layer)\.(\d+)\.")  # a decoder layer's index in a name
_ROUTER_NAMES = {"gate", "router"}
CLOSED_FORM_PEFT = frozenset({"lora", "rslora"})  # counted exactly by the closed form (rsLoRA only rescales)


@dataclass(frozen=True)
class PeftMethod:
    """The PEFT method of the active adapters: ``name`` for the record, whether the closed form counts it."""

    name: str
    closed_form: bool


def _active_adapters(model: Any, configs: dict[str, Any]) -> list[str]:
    active = getattr(model, "active_adapters", None)
    if callable(active):
        active = active()
    if isinstance(active, str):
        active = [active]
    names = [a for a in (active or getattr(model, "active_adapter", None) or []) if a in configs]
    return names or list(configs)


def _config_method(config: Any) -> str:
    kind = getattr(config, "peft_type", "")
    name = str(getattr(kind, "value", kind) or type(config).__name__).lower()
    if name == "lora":
        if getattr(config, "use_dora", False):
            return "dora"
        return "rslora" if getattr(config, "use_rslora", False) else "lora"
    return name


def _lora_variant(model: Any) -> str | None:
    """A LoRA variant found on the live layers (DoRA's magnitude vector, PEFT's ``lora_variant``), or None."""
    for module in model.modules():
        if getattr(module, "lora_A", None) is None:
            continue
        if len(getattr(module, "lora_magnitude_vector", None) or ()):
            return "dora"
        variants = getattr(module, "lora_variant", None)
        if isinstance(variants, dict) and variants:
            return type(next(iter(variants.values()))).__name__.removesuffix("Variant").lower() or "lora_variant"
    return None


def peft_method(model: Any) -> PeftMethod | None:
    """The PEFT method of ``model``'s active adapters, or None for a model without PEFT adapters."""
    configs = getattr(model, "peft_config", None)
    names: list[str] = []
    if isinstance(configs, dict) and configs:
        names = sorted({_config_method(configs[a]) for a in _active_adapters(model, configs)})
    variant = _lora_variant(model)
    if variant is not None and variant not in names:
        names = sorted({*(n for n in names if n not in CLOSED_FORM_PEFT), variant})
    if not names:
        lora_names, _, _ = _lora_layers(model)
        return PeftMethod("lora", True) if lora_names else None
    return PeftMethod("+".join(names), all(n in CLOSED_FORM_PEFT for n in names))


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
                match = LAYER_INDEX.search(full_name + ".")
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


def uses_input_grads(model: Any) -> bool:
    """transformers' ``enable_input_require_grads()`` (PEFT + reentrant checkpointing) leaves this hook."""
    return any(getattr(m, "_require_grads_hook", None) is not None for m in model.modules())


def detect_fine_tuning(model: Any, shape: ModelShape) -> tuple[FineTuning, list[str]]:
    """Derive the ``FineTuning`` from the PEFT adapters present, else from ``requires_grad``."""
    warnings: list[str] = []
    params = list(named_logical_params(model))
    trainable_names = [name for name, _, grad, _, _ in params if grad]
    embeddings = any("embed_tokens" in n or "wte" in n or "word_embeddings" in n for n in trainable_names)
    lm_head = any("lm_head" in n or re.search(r"(?:^|\.)(?:score|classifier)\.", n) for n in trainable_names)
    input_grads = uses_input_grads(model)
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
        match = LAYER_INDEX.search(name)
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
