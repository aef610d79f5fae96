"""Model names reduced to lookup keys, and the names a reference (id, path, URL) contains."""

from __future__ import annotations

import pytest

from flopsmeter.domain.model_names import candidate_names, name_key


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Llama-3.1-405B", ("llama", "3", "1", "405b")),
        ("Meta-Llama-3.1-405B-Instruct", ("llama", "3", "1", "405b")),
        ("meta-textgeneration-llama-3-1-405b-instruct-fp8", ("llama", "3", "1", "405b")),
        ("llama3.1:8b", ("llama", "3", "1", "8b")),
        ("Llama-3.1-8B@main", ("llama", "3", "1", "8b")),
        ("Qwen2.5-1.5B", ("qwen", "2", "5", "1", "5b")),
        ("huggingface-llm-qwen2-5-1-5b-instruct", ("qwen", "2", "5", "1", "5b")),
        ("Qwen3-235B-A22B-Thinking-2507", ("qwen", "3", "235b", "a", "22b")),
        ("Mixtral-8x7B-Instruct-v0.1", ("mixtral", "8x7b", "instruct", "v", "0", "1")),
        ("gemma-3-27b-it", ("gemma", "3", "27b")),
        ("deepseek-llm-r1-distill-qwen-32b", ("deepseek", "r", "1", "distill", "qwen", "32b")),
        ("instruct", ("instruct",)),  # a lone variant word is kept: a key is never empty
    ],
)
def test_name_key(name: str, key: tuple[str, ...]) -> None:
    assert name_key(name) == key


def test_sizes_stay_apart() -> None:
    assert name_key("Llama-3.1-8B") != name_key("Llama-3.1-70B") != name_key("llama-3-18b")
    assert name_key("Qwen2.5-1.5B") != name_key("Qwen2.5-15B")


@pytest.mark.parametrize(
    ("reference", "names"),
    [
        ("meta-llama/Llama-3.1-8B", ("Llama-3.1-8B",)),
        ("Llama-3.1-8B", ("Llama-3.1-8B",)),
        ("s3://bucket/models/Llama-3.1-8B/", ("Llama-3.1-8B", "models", "bucket")),
        ("/opt/ml/model/Llama-3.1-8B", ("Llama-3.1-8B", "model", "ml", "opt")),
        ("a/b/c", ("c", "b", "a")),
        ("", ()),
        ("///", ()),
    ],
)
def test_candidate_names(reference: str, names: tuple[str, ...]) -> None:
    assert candidate_names(reference) == names
