"""Fine-tuning descriptions: validation and LoRA target names."""

from __future__ import annotations

import pytest

from flopsmeter.domain.errors import InvalidFineTuning
from flopsmeter.domain.methods import FineTuning, GradientCheckpointing, input_grads_in_every_layer, lora_targets_from


def test_bad_fine_tuning_is_rejected_clearly() -> None:
    with pytest.raises(InvalidFineTuning):
        FineTuning(method="dora")
    with pytest.raises(InvalidFineTuning):
        FineTuning(method="lora", lora_rank=0)
    with pytest.raises(InvalidFineTuning):
        FineTuning(method="lora", lora_targets=frozenset())
    with pytest.raises(InvalidFineTuning):
        FineTuning(method="spectrum", trainable_layers=frozenset({-1}))


def test_lora_targets_from_strips_blanks_and_maps_aliases() -> None:
    assert lora_targets_from(" q_proj, v_proj ,") == {"q_proj", "v_proj"}
    assert lora_targets_from("query_key_value") == {"qkv_proj"}
    assert lora_targets_from(["dense_h_to_4h", "o_proj"]) == {"up_proj", "o_proj"}


def test_defaults_follow_the_method() -> None:
    assert FineTuning().embeddings_trainable and FineTuning().lm_head_trainable
    lora = FineTuning(method="qlora")
    assert lora.is_lora and not lora.embeddings_trainable and not lora.lm_head_trainable
    assert FineTuning(method="lora", train_lm_head=True).lm_head_trainable


@pytest.mark.parametrize(
    ("checkpointing", "every_layer"),
    [("unknown", True), ("reentrant", True), ("non-reentrant", False), ("off", False)],
)
def test_unstated_or_reentrant_checkpointing_means_input_gradients_in_every_layer(checkpointing, every_layer) -> None:
    assert input_grads_in_every_layer(checkpointing) is every_layer
    assert input_grads_in_every_layer(GradientCheckpointing(checkpointing)) is every_layer


def test_unknown_checkpointing_mode_is_an_error() -> None:
    with pytest.raises(ValueError):
        input_grads_in_every_layer("sometimes")
