"""Whatever module actually runs: hooks on every module a pass can enter through, one counted pass at a time.

A trainer does not always call the model it was given: TRL's distillation calls the backbone of the student and of
the teacher directly and projects their LM heads itself; PEFT calls the model inside its wrapper; ``generate()``
calls the model step by step. So each model (the policy, and every frozen model that shapes its update) gets a
forward pre-hook and a forward hook on the model, the transformers model inside a PEFT wrapper, its backbone
(``base_model``) and its output head. The outermost call whose arguments say what it computes (token ids or
embeddings; hidden states for the head) is the pass; calls inside it are part of it. A call that says nothing
(TRL's ``_forward_redirection`` hands the wrapper a function and the unwrapped model) leaves the pass to the calls
inside it. What no hook sees (the head projected from its weight, any other module) is found by measuring the first
steps (``probe.py``) and counted from there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from flopsmeter.training.model import ModelProfile
from flopsmeter.training.passes import (
    BACKBONE,
    GENERATION,
    HEAD,
    REFERENCE,
    UPDATE,
    WHOLE,
    PassCounter,
    PassShape,
    read,
)
from flopsmeter.training.towers import Tower, read_images

Classify = Callable[[Any, PassShape], "str | None"]  # (module, pass) -> category, or None: not counted (evaluation)


class PassObserver(Protocol):
    def pass_started(self, category: str, shape: PassShape) -> None:
        """A counted pass begins (before it is counted): measured mode may start a window here."""


def _base(model: Any) -> Any:
    get_base = getattr(type(model), "get_base_model", None)  # peft PeftModel
    return get_base(model) if callable(get_base) else model


def _is_module(value: Any) -> bool:
    return callable(getattr(value, "register_forward_pre_hook", None))


def pass_modules(model: Any) -> list[tuple[Any, str]]:
    """(module, what its call runs) for every module a pass of ``model`` can enter through, outermost first."""
    found: list[tuple[Any, str]] = [(model, WHOLE)]
    inner = _base(model)
    found.append((inner, WHOLE))
    backbone = getattr(inner, "base_model", None)
    found.append((backbone, BACKBONE))
    get_head = getattr(inner, "get_output_embeddings", None)
    found.append((get_head() if callable(get_head) else None, HEAD))
    seen: set[int] = set()
    modules = []
    for module, kind in found:
        if _is_module(module) and id(module) not in seen:
            seen.add(id(module))
            modules.append((module, kind))
    return modules


def policy_category(module: Any, shape: PassShape) -> str | None:
    """The policy's passes: with gradients an update, without a generation step (KV cache) or reference scoring;
    none while it evaluates (eval mode)."""
    import torch

    if not module.training:
        return None
    if torch.is_grad_enabled():
        return UPDATE
    return GENERATION if shape.cached else REFERENCE


def auxiliary_category(role: str, policy_training: Callable[[], bool]) -> Classify:
    """A frozen model's passes while the policy trains: ``role``, or generation with a KV cache."""

    def classify(module: Any, shape: PassShape) -> str | None:
        if not policy_training():
            return None
        return GENERATION if shape.cached else role

    return classify


@dataclass
class _Tree:
    """One model's hooked modules: how deep the counted pass in progress is (0: none)."""

    depth: int = 0


class PassHooks:
    """Installs and removes the hooks; counts each pass through ``passes`` and tells ``observer`` first."""

    def __init__(self, passes: PassCounter, observer: PassObserver) -> None:
        self.passes = passes
        self.observer = observer
        self._handles: list[Any] = []

    @property
    def hook_ids(self) -> set[int]:
        return {handle.id for handle in self._handles}

    def attach(self, model: Any, profile: Callable[[], ModelProfile], classify: Classify) -> None:
        tree = _Tree()
        for module, kind in pass_modules(model):
            pre = self._pre_hook(tree, kind, profile, classify)
            self._handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
            self._handles.append(module.register_forward_hook(_post_hook(tree), always_call=True))

    def attach_tower(self, module: Any, tower: Tower, classify: Classify) -> None:
        """A vision tower: every call counted per image (``towers.py``), apart from the language model's pass."""
        passes = self.passes

        def hook(called: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            def count() -> None:
                images = read_images(tower.shape, args, kwargs)
                if not images:
                    return
                shape = PassShape(len(images), 1, 1, 0, False, False)
                category = classify(called, shape)
                if category is not None:
                    passes.images(tower, images, category)

            passes.guarded(count)

        self._handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _pre_hook(self, tree: _Tree, kind: str, profile: Callable[[], ModelProfile], classify: Classify) -> Any:
        passes, observer = self.passes, self.observer

        def hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if tree.depth:
                tree.depth += 1  # a call inside the counted pass: part of it
                return

            def count() -> None:
                shape = read(kind, args, kwargs)
                category = None if shape is None else classify(module, shape)
                if shape is None or category is None:
                    return
                tree.depth = 1
                observer.pass_started(category, shape)
                if kind == HEAD:
                    passes.head_only(profile(), shape, category)
                elif category == UPDATE:
                    passes.update(profile(), shape, kwargs, kwargs.get("input_ids", args[0] if args else None))
                else:
                    passes.forward_only(profile(), shape, category)

            passes.guarded(count)

        return hook


def _post_hook(tree: _Tree) -> Any:
    def hook(module: Any, args: tuple[Any, ...], output: Any) -> None:
        if tree.depth:
            tree.depth -= 1

    return hook
