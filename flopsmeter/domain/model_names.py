"""Model names as people and tools write them, reduced to a key that the catalog can look up.

A base model reaches the classifier under many names: ``meta-llama/Llama-3.1-405B``, ``Llama-3.1-405B-Instruct``,
``llama-3.1-405b@main`` (a Hugging Face revision), ``meta-textgeneration-llama-3-1-405b-instruct`` (a SageMaker
JumpStart model id), ``s3://bucket/models/Llama-3.1-405B-Instruct/`` (an S3 model path). ``name_key`` reduces a
name to a tuple of lower-case tokens: separators (``- _ . : space``) split, a letter followed by a digit splits
(``llama3`` = ``llama 3``, ``qwen2.5`` = ``qwen 2 5``), JumpStart prefixes and a leading ``meta`` go, and trailing
variant words (``instruct``, ``chat``, ``it``, ``base``, ``pt``, ``hf``, ``fp8``...) and release dates (``2501``)
go. Size tokens (``405b``, ``8x7b``, ``a22b``) always stay, so two models of different sizes never share a key.

An instruction-tuned or quantised variant shares its base's key on purpose: its original model's compute is
the base's plus post-training, so the base's figure is the lower (conservative) one.
"""

from __future__ import annotations

import re
from enum import StrEnum

# SageMaker JumpStart model id prefixes (e.g. ``meta-textgeneration-llama-3-1-405b-instruct``), and what they
# become. JumpStart writes versions with "-" for "." (``llama-3-1``), which the tokeniser treats alike.
JUMPSTART_PREFIXES: tuple[tuple[str, str], ...] = (
    ("meta-textgenerationneuron-", ""),
    ("meta-textgeneration-", ""),
    ("meta-vlm-", ""),
    ("huggingface-textgeneration1-", ""),
    ("huggingface-textgeneration2-", ""),
    ("huggingface-textgeneration-", ""),
    ("huggingface-llm-", ""),
    ("huggingface-reasoning-", ""),
    ("deepseek-llm-", "deepseek-"),
)

# Trailing words that name a post-trained, converted or quantised release of the same pretrained model.
VARIANT_WORDS = frozenset({"instruct", "chat", "it", "base", "pt", "hf", "fp8", "bf16", "fp16", "thinking", "sft"})
# Leading tokens that repeat the organisation inside the name (``Meta-Llama-3-8B``).
ORG_TOKENS = frozenset({"meta"})

_SPLIT = re.compile(r"[\s\-_.:]+")
_LETTER_DIGIT = re.compile(r"(?<=[a-z])(?<![0-9]x)(?=[0-9])")  # llama3 -> llama 3; 8x7b stays
_RELEASE_DATE = re.compile(r"^\d{4}$")  # Mistral/Qwen release suffixes: 2501, 2503, 2507
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
MAX_NAME_LENGTH = 1024  # longer input is not a model name or path anyone wrote


class MatchMethod(StrEnum):
    """How a name was matched to a catalog entry (recorded with the classification)."""

    EXACT = "exact"  # the catalog's Hugging Face id, any case
    ALIAS = "alias"  # a name in the alias table (or the id without its organisation), any case
    NORMALISED = "normalised"  # after name_key: variant, revision, JumpStart id or path segment


def name_key(name: str) -> tuple[str, ...]:
    """The lookup key of one model name (no organisation, no path): see the module docstring."""
    text = name.strip().lower()
    text = text.split("@", 1)[0]  # Hugging Face revision: name@main, name@<sha>
    for prefix, replacement in JUMPSTART_PREFIXES:
        if text.startswith(prefix):
            text = replacement + text[len(prefix) :]
            break
    words = [w for w in _SPLIT.split(text) if w]
    while len(words) > 1 and words[0] in ORG_TOKENS:
        words.pop(0)
    while len(words) > 1 and (words[-1] in VARIANT_WORDS or _RELEASE_DATE.match(words[-1])):
        words.pop()
    return tuple(t for word in words for t in _LETTER_DIGIT.split(word) if t)


def candidate_names(reference: str) -> tuple[str, ...]:
    """The names a reference may contain, most specific first.

    ``org/name`` gives ``name``; a path or URL (``s3://bucket/a/Llama-3.1-8B/``) gives each segment from the
    last to the first, since the model's name is usually near the end.
    """
    text = reference.strip()[:MAX_NAME_LENGTH]
    has_scheme = bool(_SCHEME.match(text))
    path = _SCHEME.sub("", text)
    segments = [s for s in path.split("/") if s]
    if not segments:
        return ()
    if not has_scheme and not text.startswith("/") and len(segments) <= 2:
        return (segments[-1],)
    return tuple(reversed(segments))
