"""SageMaker HyperPod recipes run as training jobs: which recipe, model and sequence length, where the job says.

A recipe job is an ordinary training job (instances, so a hardware ceiling; the meter if the user opted in): the
FLOPs stay metered or ceiling-bounded. What the recipe adds is context for the record: its name (e.g.
``fine-tuning/llama/hf_llama3_8b_seq8k_gpu_lora``), the model it fine-tunes and its sequence length.

Where they can be found: the SageMaker Python SDK (``ModelTrainer.from_recipe``, ``sagemaker.train.sm_recipes``)
resolves the recipe into ``recipe.yaml`` inside the uploaded source and sets the hyper-parameters
``config-path`` / ``config-name``, so the job itself carries only that marker. The name, model and sequence
length reach DescribeTrainingJob when the launcher passes them as hyper-parameters or environment variables
(``RECIPE_KEYS`` below, flattened recipe keys such as ``model.hf_model_name_or_path`` included); the recipe name
encodes model and sequence length itself (``hf_<model>_seq<N>k``, N x 1024 tokens).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from flopsmeter.domain.catalog_names import CatalogMatch, match_base_model

RECIPE_MARKERS = ("config-name", "config_name")  # set by the SDK for every recipe job
RECIPE_NAME_KEYS = ("recipe", "training_recipe", "training-recipe", "RECIPE", "TRAINING_RECIPE", "recipe_name")
MODEL_KEYS = ("model.hf_model_name_or_path", "hf_model_name_or_path", "model.model_name_or_path",
              "model_name_or_path", "model_id", "model-id", "FLOPSMETER_BASE_MODEL")  # fmt: skip
SEQ_LEN_KEYS = ("model.max_context_width", "max_context_width", "model.seq_length", "seq_length",
                "max_seq_length", "sequence_length", "seq-len")  # fmt: skip
MAX_VALUE_LENGTH = 512
_RECIPE_NAME = re.compile(r"hf_(?P<model>[a-z0-9_.]+?)_seq(?P<seq>\d{1,4})k", re.IGNORECASE)


@dataclass(frozen=True)
class RecipeInfo:
    """What a recipe job says about its recipe (each field None when the job does not say)."""

    recipe: str | None
    model: str | None
    seq_len: int | None
    match: CatalogMatch | None
    found_in: tuple[str, ...]  # the keys the facts came from

    def as_dict(self) -> dict[str, object]:
        return {
            "recipe": self.recipe,
            "model": self.model,
            "catalog_model_id": self.match.model.model_id if self.match else None,
            "seq_len": self.seq_len,
            "found_in": list(self.found_in),
        }


def _first(sources: tuple[Mapping[str, str], ...], keys: tuple[str, ...]) -> tuple[str, str] | None:
    for source in sources:
        for key in keys:
            value = source.get(key)
            if isinstance(value, str) and value.strip():
                return key, value.strip().strip('"')[:MAX_VALUE_LENGTH]
    return None


def _seq_len(text: str) -> int | None:
    try:
        value = int(float(text))
    except ValueError:
        return None
    return value if value > 0 else None


def recipe_from_job(hyperparameters: Mapping[str, str], environment: Mapping[str, str]) -> RecipeInfo | None:
    """The recipe facts of a training job, or None when nothing marks it as a recipe job."""
    sources = (hyperparameters, environment)
    name = _first(sources, RECIPE_NAME_KEYS)
    marker = _first(sources, RECIPE_MARKERS)
    if name is None and marker is None:
        return None
    found_in = [hit[0] for hit in (name, marker) if hit]
    recipe = name[1] if name else None
    parsed = _RECIPE_NAME.search(recipe) if recipe else None
    model_hit = _first(sources, MODEL_KEYS)
    model = model_hit[1] if model_hit else (parsed["model"].replace("_", "-") if parsed else None)
    if model_hit:
        found_in.append(model_hit[0])
    seq_hit = _first(sources, SEQ_LEN_KEYS)
    seq_len = _seq_len(seq_hit[1]) if seq_hit else (int(parsed["seq"]) * 1024 if parsed else None)
    if seq_hit:
        found_in.append(seq_hit[0])
    return RecipeInfo(recipe, model, seq_len, match_base_model(model) if model else None, tuple(found_in))
