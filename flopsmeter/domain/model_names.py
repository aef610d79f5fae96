"""Model names as people and tools write them, reduced to a key that the catalog can look up.

A base model reaches the classifier under many names: ``meta-llama/Llama-3.1-405B``, ``Llama-3.1-405B-Instruct``,
``llama-3.1-405b@main`` (a Hugging Face revision), ``meta-textgeneration-llama-3-1-405b-instruct`` (a SageMaker
JumpStart model id), ``s3://bucket/models/Llama-3.1-405B-Instruct/`` (an S3 model path). ``name_key`` reduces a
name to a tuple of lower-case tokens: separators (``- _ . : space``) split, a letter followed by a digit splits
(``llama3`` = ``llama 3``, ``qwen2.5`` = ``qwen 2 5``), JumpStart prefixes and a leading ``meta`` go, and trailing
variant words (``instruct``, ``chat``, ``it``, ``base``, ``pt``, ``hf``, ``fp8``...) and release dates (``2501``)
go. Size tokens (``405b``, ``8x7b``, ``a22b``) always stay, so two models of different sizes never share a key.

Quantisation and format conversions keep the weights' origin: ``-AWQ-INT4``, ``-GPTQ``, ``-bnb-4bit``,
``-FP8-dynamic``, ``-GGUF`` (and a ``.gguf`` file with its ``Q4_K_M`` type), MLX ``-4bit`` conversions, ``-W4A16``
and the like go with the variant words. A Bedrock model id (``meta.llama3-1-405b-instruct-v1:0``, with or without
a cross-region prefix or a foundation-model ARN around it) gives its model name (``llama3-1-405b-instruct``).

An instruction-tuned or quantised variant shares its base's key on purpose: its original model's compute is
the base's plus post-training, so the base's figure is the lower (conservative) one. A name that shares no key
(a fine-tuned derivative: ``Hermes-3-Llama-3.1-405B``) is matched by the family and size it declares
(``catalog_names.match_base_model``; ``size_tokens``).
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
# Trailing words of a quantised or converted copy (AutoAWQ, AutoGPTQ, bitsandbytes, llm-compressor, llama.cpp GGUF,
# MLX, ExLlamaV2, ONNX/OpenVINO exports): the weights are still the named model's.
FORMAT_WORDS = re.compile(
    r"^(?:awq|gptq|gguf|ggml|mlx|exl2|bnb|nf4|hqq|eetq|aqlm|quanto|onnx|openvino|ov|marlin|unsloth|quantized|quant|"
    r"dynamic|static|int\d+|fp\d+|nvfp4|mxfp4|w\d+a\d+(?:g\d+)?|\d+bits?|\d+bpw|\d+(?:\.\d+)?bpw|bf16|f16|f32)$"
)
_FILE_EXTENSION = re.compile(r"\.(?:gguf|ggml|safetensors|bin|pth?|onnx|tar\.gz|tgz)$", re.IGNORECASE)
# llama.cpp quantisation types at the end of a GGUF file or repo name: Q4_K_M, IQ3_XS, Q8_0, F16
_GGUF_TYPE = re.compile(r"[-_.](?:i?q\d+(?:_[a-z0-9]+)*|f16|f32|bf16)$", re.IGNORECASE)
# Bedrock model providers (Amazon Bedrock model ids ``<provider>.<name>-v<n>:<m>``); only these are read as ids
BEDROCK_PROVIDERS = frozenset({
    "meta", "amazon", "anthropic", "mistral", "cohere", "ai21", "deepseek", "qwen", "openai", "writer", "stability",
    "twelvelabs", "luma", "google", "nvidia", "minimax", "moonshot", "moonshotai",
})  # fmt: skip
BEDROCK_MODEL_ID = re.compile(
    r"^(?:(?:us|eu|apac|us-gov|global)\.)?(?P<provider>[a-z0-9-]+)\.(?P<name>[a-z0-9-.]+?)"
    r"(?:-v\d+(?::\d+)?(?::[a-z0-9]+)?)?$"
)
# A size token of a key: 405b, 8x7b, 270m (the unit is what makes it a size; "3" or "v1" is not one)
_SIZE_TOKEN = re.compile(r"^\d+(?:x\d+)?[bm]$")
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
    NORMALISED = "normalised"  # after name_key: variant, format, revision, JumpStart or Bedrock id, path segment
    FAMILY_SIZE = "family_size"  # no key matched: the name declares one entry's family and size (a derivative)


def name_key(name: str) -> tuple[str, ...]:
    """The lookup key of one model name (no organisation, no path): see the module docstring."""
    text = name.strip().lower()
    text = text.split("@", 1)[0]  # Hugging Face revision: name@main, name@<sha>
    text = _GGUF_TYPE.sub("", _FILE_EXTENSION.sub("", text))
    for prefix, replacement in JUMPSTART_PREFIXES:
        if text.startswith(prefix):
            text = replacement + text[len(prefix) :]
            break
    words = [w for w in _SPLIT.split(text) if w]
    while len(words) > 1 and words[0] in ORG_TOKENS:
        words.pop(0)
    while len(words) > 1 and (
        words[-1] in VARIANT_WORDS or FORMAT_WORDS.match(words[-1]) or _RELEASE_DATE.match(words[-1])
    ):
        words.pop()
    return tuple(t for word in words for t in _LETTER_DIGIT.split(word) if t)


def size_tokens(key: tuple[str, ...]) -> tuple[str, ...]:
    """The size tokens of a key (``405b``, ``8x7b``, ``270m``), in order."""
    return tuple(t for t in key if _SIZE_TOKEN.match(t))


# A size as a name states it: 405B, 1.5B, 8x7B, 270M (after a separator, or after "a" for active parameters)
_STATED_SIZE = re.compile(r"(?:^|[-_./:a])(?:(\d+)x)?(\d+(?:\.\d+)?)([bm])(?=$|[-_./:@])")


def stated_parameters(reference: str) -> float | None:
    """The largest parameter count a name or path states (``Mistral-7B`` -> 7e9, ``8x7B`` -> 5.6e10), or None."""
    sizes = [
        float(size) * (1e9 if unit == "b" else 1e6) * int(experts or 1)
        for experts, size, unit in _STATED_SIZE.findall(reference.strip()[:MAX_NAME_LENGTH].lower())
    ]
    return max(sizes) if sizes else None


def bedrock_model_name(model_id: str) -> str:
    """``meta.llama3-1-8b-instruct-v1:0`` -> ``llama3-1-8b-instruct``: provider and version dropped.

    Anything that is not a Bedrock model id of a known provider comes back as written (stripped).
    """
    text = model_id.strip()
    found = BEDROCK_MODEL_ID.match(text.lower())
    return found["name"] if found and found["provider"] in BEDROCK_PROVIDERS else text


def candidate_names(reference: str) -> tuple[str, ...]:
    """The names a reference may contain, most specific first.

    ``org/name`` gives ``name``; a path or URL (``s3://bucket/a/Llama-3.1-8B/``) gives each segment from the
    last to the first, since the model's name is usually near the end. A Bedrock model id (alone or as an ARN's
    last segment) gives its model name first, then the id as written.
    """
    text = reference.strip()[:MAX_NAME_LENGTH]
    has_scheme = bool(_SCHEME.match(text))
    path = _SCHEME.sub("", text)
    segments = [s for s in path.split("/") if s]
    if not segments:
        return ()
    if not has_scheme and not text.startswith("/") and len(segments) <= 2 and not text.startswith("arn:"):
        segments = segments[-1:]
    names: list[str] = []
    for segment in reversed(segments):
        bedrock = bedrock_model_name(segment)
        names += [bedrock, segment] if bedrock != segment else [segment]
    return tuple(names)
