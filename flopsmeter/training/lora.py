"""LoRA counted as configured: each layer with its own adapted modules and ranks.

PEFT's ``layers_to_transform``, ``target_modules`` regexes and ``rank_pattern`` / ``alpha_pattern`` all end up
as ``LoraLayer`` modules on the live model; ``lora_plan`` reads them back (layer index, module name, active
rank). ``lora_costs`` then adds the model up layer by layer with the closed form (``flopsmeter.domain.flops``) on
a one-layer copy of the shape: layers below the first adapter run forward only (nothing below needs a gradient),
every later layer backpropagates into its input, and each adapter costs what its own rank costs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from flopsmeter.domain.flops import LM_HEAD, LORA_ADAPTERS, FlopsPerToken, flops_per_token
from flopsmeter.domain.methods import FineTuning
from flopsmeter.domain.shape import ModelShape
from flopsmeter.training.tuning import LAYER_INDEX

# Modules in the order a layer runs them: an adapter makes every later group's input need a gradient.
_GROUPS = (
    frozenset({"q_proj", "k_proj", "v_proj", "qkv_proj"}),
    frozenset({"o_proj"}),
    frozenset({"gate_proj", "up_proj", "gate_up_proj", "shared_expert_gate"}),
    frozenset({"down_proj"}),
)

LoraPlan = Mapping[int, Mapping[str, int]]  # layer -> {module name: rank}


def lora_plan(model: Any) -> tuple[dict[int, dict[str, int]], list[str]]:
    """{layer: {module: rank}} of the active LoRA adapters, and the adapted modules outside any layer."""
    plan: dict[int, dict[str, int]] = {}
    outside: list[str] = []
    for full_name, module in model.named_modules():
        lora_a = getattr(module, "lora_A", None)
        ranks = getattr(module, "r", None)
        if lora_a is None or not isinstance(ranks, dict) or not len(lora_a):
            continue
        active = [a for a in (getattr(module, "active_adapters", None) or list(ranks)) if a in ranks and a in lora_a]
        if not active:
            continue
        match = LAYER_INDEX.search(full_name + ".")
        if match is None:
            outside.append(full_name)
            continue
        name = full_name.rsplit(".", 1)[-1]
        plan.setdefault(int(match.group(1)), {})[name] = sum(int(ranks[a]) for a in active)
    return plan, outside


@dataclass(frozen=True)
class Costs:
    """Per-token costs as (constant, per_position) pairs."""

    training: tuple[float, float]
    forward: tuple[float, float]
    recompute: tuple[float, float]
    kernel_recompute: tuple[float, float] = (0.0, 0.0)  # a fused attention backward's QK^T, layers with a backward


def _pair(fn: Callable[[int], float]) -> tuple[float, float]:
    one, two = fn(1), fn(2)
    return one - (two - one), two - one


def _costs(shape: ModelShape, tuning: FineTuning, value: Callable[[FlopsPerToken], float]) -> tuple[float, float]:
    """(constant, per_position) of ``value`` of the closed form for ``shape`` and ``tuning``."""
    return _pair(lambda s: value(flops_per_token(shape, s, tuning)))


def _one_layer(shape: ModelShape, layer: int) -> ModelShape:
    dense = frozenset({0}) if layer in shape.dense_layers else frozenset()
    return replace(shape, num_layers=1, dense_layers=dense)


def _lora(targets: frozenset[str], rank: int, input_grad: bool) -> FineTuning:
    return FineTuning(method="lora", lora_rank=rank, lora_targets=targets, input_requires_grad=input_grad,
                      train_embeddings=False, train_lm_head=False)  # fmt: skip


def _module_input_grad(module: str, adapted: Mapping[str, int], layer_input_grad: bool) -> bool:
    if layer_input_grad:
        return True
    for group in _GROUPS:
        if module in group:
            return False
        if group & set(adapted):
            return True
    return True  # a module the order does not know: assume its input needs a gradient (counts high)


def _adapter(one: ModelShape, module: str, rank: int, input_grad: bool) -> tuple[tuple[float, float], float]:
    """(training pair, forward constant) of one module's adapter at ``rank``."""
    tuning = _lora(frozenset({module}), rank, input_grad)
    training = _costs(one, tuning, lambda per: per.components.get(LORA_ADAPTERS, 0.0))
    forward = flops_per_token(one, 1, tuning).forward - flops_per_token(one, 1, FineTuning()).forward
    return training, forward


def lora_costs(shape: ModelShape, plan: LoraPlan, tuning: FineTuning) -> Costs:
    """Training, forward and checkpoint-recompute costs per token of ``shape`` with LoRA as in ``plan``."""
    head = 2.0 * shape.hidden_size * shape.vocab_size
    any_module = next(iter(shape.linear_modules(0)))
    grad = tuning.embeddings_trainable or tuning.input_requires_grad
    training, forward, recompute, kernel = [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]
    for layer in range(shape.num_layers):
        one = _one_layer(shape, layer)
        adapted = plan.get(layer, {})
        layer_forward = list(_costs(one, FineTuning(), lambda per: per.forward - head))
        if not grad and not adapted:  # nothing below the first adapter needs a gradient: forward only
            layer_training = list(layer_forward)
        else:
            base_tuning = _lora(frozenset(adapted) or frozenset({any_module}), 1, grad or not adapted)
            layer_training = list(_costs(one, base_tuning, _without_head_and_adapters))
            layer_kernel = _costs(one, base_tuning, lambda per: per.attention_recompute)
            kernel = [kernel[0] + layer_kernel[0], kernel[1] + layer_kernel[1]]
            for module, rank in adapted.items():
                adapter_training, adapter_forward = _adapter(
                    one, module, rank, _module_input_grad(module, adapted, grad)
                )
                layer_training[0] += adapter_training[0]
                layer_forward[0] += adapter_forward
            recompute = [recompute[0] + layer_forward[0], recompute[1] + layer_forward[1]]
            grad = True
        training = [training[0] + layer_training[0], training[1] + layer_training[1]]
        forward = [forward[0] + layer_forward[0], forward[1] + layer_forward[1]]
    head_tuning = FineTuning(method="lora", lora_rank=1, lora_targets=frozenset({any_module}),
                             input_requires_grad=True, train_embeddings=tuning.embeddings_trainable,
                             train_lm_head=tuning.lm_head_trainable)  # fmt: skip
    training[0] += flops_per_token(shape, 1, head_tuning).components.get(LM_HEAD, 0.0) if grad else head
    forward[0] += head
    return Costs((training[0], training[1]), (forward[0], forward[1]), (recompute[0], recompute[1]),
                 (kernel[0], kernel[1]))  # fmt: skip


def _without_head_and_adapters(per: FlopsPerToken) -> float:
    return per.total - per.components.get(LM_HEAD, 0.0) - per.components.get(LORA_ADAPTERS, 0.0)


def uniform(plan: LoraPlan, num_layers: int) -> bool:
    """Every layer carries the same modules at one rank: the closed form's own LoRA model fits exactly."""
    layers = [plan.get(i, {}) for i in range(num_layers)]
    ranks = {r for layer in layers for r in layer.values()}
    return len(ranks) <= 1 and all(layer == layers[0] for layer in layers)
