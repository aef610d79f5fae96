"""Vision-language and encoder-decoder models metered end to end under ``Trainer`` / ``Seq2SeqTrainer`` (tiny models,
seconds each): counted + recompute vs FlopCounterMode over the trainer's construction and ``train()``."""

from __future__ import annotations

import functools

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.support import trainer_runs as runs  # noqa: E402
from tests.support.meters import EXACT  # noqa: E402
from tests.support.trl_runs import run  # noqa: E402

pytestmark = pytest.mark.torch


def _exact(result) -> dict:
    doc = result.document
    assert doc["status"] == "completed" and doc["meter_incomplete"] is False
    assert abs(result.error_pct) < EXACT * 100, doc["breakdown"]
    return doc


def test_a_llava_shaped_model_counts_its_frozen_tower_per_image() -> None:
    doc = _exact(run(runs.vision_language(runs.llava_model, kind="llava")))
    assert doc["model"]["vision_tower"] == {"model_type": "clip_vision_model", "layers": 3, "width": 32,
                                            "trainable": False, "projector_trainable": True}  # fmt: skip
    assert doc["model"]["fine_tuning"]["input_requires_grad"] is True  # image tokens come from the trained projector


def test_a_qwen2_vl_shaped_model_counts_each_image_at_its_own_size() -> None:
    model = functools.partial(runs.qwen2_vl_model, attention="sdpa")
    doc = _exact(run(runs.vision_language(model, kind="qwen2", sizes=(8, 4, 12))))
    assert doc["model"]["vision_tower"]["trainable"] is True and doc["recompute_flops"] > 0


@pytest.mark.parametrize("model", [runs.t5_model, runs.bart_model], ids=["t5", "bart-sdpa"])
def test_an_encoder_decoder_model_counts_encoder_and_decoder_apart(model) -> None:
    doc = _exact(run(runs.seq2seq(model)))
    assert doc["passes"]["model_source"] == "meta (encoder-decoder)"
    costs = doc["model"]["encoder_decoder"]["training"]
    assert costs["e1"] > 0 and costs["d1"] > 0 and costs["x"] > 0  # encoder tokens, decoder tokens, cross-attention
