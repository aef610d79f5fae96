"""Small, real-shaped Hugging Face ``config.json`` files shipped with the package (``configs/*.json``).

They let ``flopsmeter estimate --config llama-3.1-8b`` run without a download. The numbers are those of
the public configs (each file's ``_source``). ``config_for_model`` also finds them by any name the catalog
matches (Hugging Face id, JumpStart id, Bedrock model id), for the catalog models that have one.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from flopsmeter.domain.catalog import BaseModel
from flopsmeter.domain.catalog_names import match_base_model
from flopsmeter.domain.errors import InvalidModelSpec
from flopsmeter.domain.model_names import bedrock_model_name


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


def bundled_config_for(model: BaseModel) -> str | None:
    """The bundled config of a catalog entry (the shipped name the catalog matches to it), if one ships."""
    for name in bundled_config_names():
        found = match_base_model(name)
        if found is not None and found.model.model_id == model.model_id:
            return name
    return None


def config_for_model(reference: str) -> tuple[str, dict[str, Any]]:
    """The bundled config for a model id or name (bundled name, catalog / Hugging Face / JumpStart / Bedrock id).

    Raises ``InvalidModelSpec`` saying which case it is: the catalog does not know the name, or knows it but no
    architecture ships for it.
    """
    if reference.strip().lower() in bundled_config_names():
        return reference.strip().lower(), load_bundled_config(reference)
    found = match_base_model(reference) or match_base_model(bedrock_model_name(reference))
    if found is None:
        raise InvalidModelSpec(f"{reference!r} is not a model in the bundled catalog; pass a config.json path "
                               f"(bundled architectures: {', '.join(bundled_config_names())})")  # fmt: skip
    name = bundled_config_for(found.model)
    if name is None:
        raise InvalidModelSpec(f"{reference!r} is {found.model.model_id} in the catalog, but no architecture is "
                               "bundled for it; pass its config.json path")  # fmt: skip
    return name, load_bundled_config(name)
