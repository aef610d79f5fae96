"""Recipe jobs: the recipe, model and sequence length a training job carries, when it carries them."""

from __future__ import annotations

from flopsmeter.domain.recipes import recipe_from_job


def test_a_job_without_recipe_marks_is_not_a_recipe_job() -> None:
    assert recipe_from_job({"epochs": "3", "model_id": "meta-llama/Llama-3.1-8B"}, {}) is None


def test_the_sdk_marker_alone_records_a_recipe_job_with_nothing_else_known() -> None:
    info = recipe_from_job({"config-path": ".", "config-name": "recipe.yaml"}, {})
    assert info is not None
    assert (info.recipe, info.model, info.seq_len, info.match) == (None, None, None, None)
    assert info.found_in == ("config-name",)


def test_the_recipe_name_gives_model_and_sequence_length() -> None:
    info = recipe_from_job({"recipe": "fine-tuning/llama/hf_llama3_8b_seq8k_gpu_lora"}, {})
    assert info is not None
    assert info.seq_len == 8 * 1024
    assert info.match is not None and info.match.model.model_id == "meta-llama/Meta-Llama-3-8B"


def test_explicit_keys_win_over_the_name_and_environment_counts() -> None:
    info = recipe_from_job(
        {"config-name": "recipe.yaml", "model.max_context_width": "16384"},
        {"TRAINING_RECIPE": "hf_llama3_8b_seq8k_gpu_lora", "FLOPSMETER_BASE_MODEL": "meta-llama/Llama-3.1-8B"},
    )
    assert info is not None
    assert info.seq_len == 16384
    assert info.match is not None and info.match.model.model_id == "meta-llama/Llama-3.1-8B"
    assert info.as_dict()["found_in"] == ["TRAINING_RECIPE", "config-name", "FLOPSMETER_BASE_MODEL",
                                          "model.max_context_width"]  # fmt: skip


def test_unusable_sequence_length_is_left_unknown() -> None:
    info = recipe_from_job({"recipe": "custom", "seq_length": "long"}, {})
    assert info is not None and info.seq_len is None
