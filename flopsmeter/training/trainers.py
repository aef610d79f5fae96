"""What a Hugging Face / TRL trainer runs besides the policy: found on the trainer the callback serves.

A callback is not handed its trainer, so ``find_trainer`` looks up the call stack for the object whose
``callback_handler`` holds the callback (``Trainer._inner_training_loop`` calls ``on_train_begin`` through it).
On it, by the attribute names TRL uses:

| attribute | trainers | counted as |
|---|---|---|
| ``ref_model`` | DPO, KTO, GRPO / RLOO with a KL term | ``reference`` |
| ``teacher_model`` | GKD / distillation | ``reference`` |
| ``reward_funcs`` (the ``nn.Module`` ones), ``reward_model`` | GRPO, RLOO, PPO-style | ``reward_inference`` |
| ``args.use_vllm`` | GRPO, RLOO with a vLLM engine or server | ``generation`` from the update passes' tokens |

A PEFT policy without ``ref_model`` scores the reference with its adapters disabled: those are no-grad passes of
the policy, counted by its own hook.
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

from flopsmeter.training.passes import REFERENCE, REWARD_INFERENCE

AUXILIARY_ATTRIBUTES = (("ref_model", REFERENCE), ("teacher_model", REFERENCE), ("reward_model", REWARD_INFERENCE))
MAX_FRAMES = 16


def find_trainer(callback: Any) -> Any | None:
    """The trainer whose ``callback_handler`` holds ``callback``, from the calling frames; None if not found."""
    frame: FrameType | None = sys._getframe(1)
    for _ in range(MAX_FRAMES):
        if frame is None:
            return None
        candidate = frame.f_locals.get("self")
        handler = getattr(candidate, "callback_handler", None)
        if handler is not None and any(c is callback for c in getattr(handler, "callbacks", ())):
            return candidate
        frame = frame.f_back
    return None


def _is_module(value: Any) -> bool:
    return callable(getattr(value, "register_forward_pre_hook", None))


def auxiliary_models(trainer: Any, policy: Any) -> list[tuple[str, Any]]:
    """(role, model) of every frozen model on ``trainer`` whose forwards shape the policy's update."""
    found: list[tuple[str, Any]] = []
    for attribute, role in AUXILIARY_ATTRIBUTES:
        found.append((role, getattr(trainer, attribute, None)))
    found.extend((REWARD_INFERENCE, f) for f in getattr(trainer, "reward_funcs", None) or ())
    seen: set[int] = {id(policy)}
    models = []
    for role, model in found:
        if _is_module(model) and id(model) not in seen:
            seen.add(id(model))
            models.append((role, model))
    return models


def unseen_rollouts_per_update(trainer: Any) -> float:
    """With vLLM (in-process or a server) rollouts never pass through the policy's forward: each update pass then
    carries ``1 / num_iterations`` of a rollout's generation (every rollout is trained on ``num_iterations`` times)."""
    args = getattr(trainer, "args", None)
    if not getattr(args, "use_vllm", False):
        return 0.0
    iterations = getattr(args, "num_iterations", 1) or 1
    return 1.0 / float(iterations)
