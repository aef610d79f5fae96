"""Small, real-shaped Hugging Face ``config.json`` files shipped with the package (``configs/*.json``).

They let ``flopsmeter estimate --config llama-3.1-8b`` run without a download. The numbers are those of
the public configs (each file's ``_source``).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from flopsmeter.domain.errors import InvalidModelSpec


def bundled_config_names() -> tuple[str, ...]:
    """Names of the shipped configs (file names without ``.json``), sorted."""
    folder = resources.files("flopsmeter.domain").joinpath("configs")
    return tuple(sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json")))


def load_bundled_config(name: str) -> dict[str, Any]:
    """The shipped config called ``name`` (any case); an unknown name raises ``InvalidModelSpec``."""
    key = name.strip().lower()
    if key not in bundled_config_names():
        raise InvalidModelSpec(f"no bundled model config {name!r}; bundled: {', '.join(bundled_config_names())}")
    text = resources.files("flopsmeter.domain").joinpath("configs", f"{key}.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data
