"""The output head the model really has: a vocabulary-sized LM head, or a classifier / reward head.

``AutoModelForSequenceClassification`` (reward models included) puts ``score`` = Linear(hidden, num_labels) where
a causal LM has its LM head, ``AutoModelForTokenClassification`` puts ``classifier``. Both run on every position,
like an LM head, so the closed form counts them as an LM head of ``num_labels`` outputs (embeddings are a lookup:
the vocabulary size costs no FLOPs there).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from flopsmeter.domain.shape import ModelShape

HEAD_ATTRIBUTES = ("score", "classifier")


@dataclass(frozen=True)
class Head:
    name: str  # "lm_head", "score", "classifier"
    out_features: int
    params: int


def _first_linear(module: Any) -> Any:
    for sub in module.modules():
        weight = getattr(sub, "weight", None)
        if getattr(sub, "out_features", None) is not None and weight is not None and len(weight.shape) == 2:
            return sub
    return None


def find_head(model: Any) -> Head | None:
    """The classifier head of a classification / reward model, or None for a language model's LM head."""
    get_output = getattr(model, "get_output_embeddings", None)
    if callable(get_output) and get_output() is not None:
        return None
    for name in HEAD_ATTRIBUTES:
        module = getattr(model, name, None)
        linear = None if module is None else _first_linear(module)
        if linear is not None:
            bias = getattr(linear, "bias", None)
            params = int(linear.weight.numel()) + (int(bias.numel()) if bias is not None else 0)
            return Head(name, int(linear.out_features), params)
    return None


def shape_with_head(shape: ModelShape, head: Head) -> ModelShape:
    """The shape the FLOPs formulas see: the LM head's outputs are the head's (the embeddings cost no FLOPs)."""
    return replace(shape, vocab_size=head.out_features, tie_word_embeddings=False)


def formula_params_with_head(shape: ModelShape, head: Head) -> int:
    """The formula's parameter count with the LM head swapped for ``head`` (for the live-count comparison)."""
    lm_head = 0 if shape.tie_word_embeddings else shape.vocab_size * shape.hidden_size
    return shape.total_params - lm_head + head.params
