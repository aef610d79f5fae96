"""The pre-flight for any Hugging Face config: what the closed form does not cover (multi-head latent attention,
encoder-decoder) is measured on meta as the meter does, and says so; a vision-language config is counted with its
tower per image given the images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flopsmeter.cli.main import main
from flopsmeter.domain.flops import flops_per_token
from flopsmeter.domain.shape import ModelShape
from flopsmeter.domain.towers import VisionTower, tower_flops
from tests.support.tiny_models import LLAVA_CONFIG as LLAVA

MLA = {"model_type": "deepseek_v3", "vocab_size": 204, "hidden_size": 64, "intermediate_size": 128,
       "moe_intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4,
       "n_routed_experts": 4, "num_experts_per_tok": 2, "n_shared_experts": 1, "first_k_dense_replace": 1,
       "kv_lora_rank": 16, "q_lora_rank": 32, "qk_rope_head_dim": 8, "qk_nope_head_dim": 8, "v_head_dim": 16,
       "n_group": 1, "topk_group": 1, "max_position_embeddings": 512}  # fmt: skip


def _estimate(capsys, tmp_path: Path, config: dict, *extra: str) -> tuple[int, dict | None, str]:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    code = main(["estimate", "--config", str(path), "--seq-len", "256", "--tokens", "1e6", "--json", *extra])
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else None, err


@pytest.mark.torch
def test_a_latent_attention_config_is_measured_on_meta_and_says_so(capsys, tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from flopsmeter.training.config_cost import measure_config

    code, body, _ = _estimate(capsys, tmp_path, MLA)
    assert code == 0 and body["formula_version"] == "meta"
    assert body["total_flops"] == pytest.approx(measure_config(MLA, 256).training * 1e6)
    assert any("measured on the meta device" in w and "kv_lora_rank" in w for w in body["warnings"])
    assert body["classification"]["classifications"][0]["outcome"] == "below"


def test_a_vision_language_config_counts_its_tower_per_image(capsys, tmp_path: Path) -> None:
    text = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "vocab_size": 256}  # fmt: skip
    config = {**LLAVA, "text_config": text, "vision_config": {**LLAVA["vision_config"], "image_size": 32}}
    code, _, err = _estimate(capsys, tmp_path, config)
    assert code == 2 and "--images" in err  # the tower's cost depends on the images: refused without them
    code, body, _ = _estimate(capsys, tmp_path, config, "--images", "1000")
    per_image = tower_flops(VisionTower.from_hf_config(config), 16, tower_trainable=True, projector_trainable=True)
    text_only = flops_per_token(ModelShape.from_hf_config(text), 256).total * 1e6
    assert code == 0 and body["images"]["patches_per_image"] == 16  # 32 x 32 pixels in 8 x 8 patches
    assert body["total_flops"] == pytest.approx(text_only + 1000 * per_image.training)
    assert body["breakdown"]["vision_tower"] == pytest.approx(1000 * per_image.training)
    code, body, _ = _estimate(capsys, tmp_path, {**QWEN2_VL_TEXT}, "--images", "10")
    assert code == 2  # Qwen2-VL images come in any size: the patches must be given
    code, body, _ = _estimate(capsys, tmp_path, {**QWEN2_VL_TEXT}, "--images", "10", "--patches-per-image", "64")
    assert code == 0 and body["images"]["patches_per_image"] == 64


QWEN2_VL_TEXT = {
    "model_type": "qwen2_vl", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256,
    "vision_config": {"model_type": "qwen2_vl_vision", "depth": 2, "embed_dim": 32, "hidden_size": 64,
                      "mlp_ratio": 2, "patch_size": 4, "spatial_merge_size": 2, "temporal_patch_size": 2},
}  # fmt: skip


@pytest.mark.torch
def test_an_encoder_decoder_config_is_measured_with_its_decoder_length(capsys, tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    t5 = {
        "model_type": "t5",
        "is_encoder_decoder": True,
        "vocab_size": 256,
        "d_model": 64,
        "d_kv": 16,
        "d_ff": 128,
        "num_layers": 2,
        "num_decoder_layers": 2,
        "num_heads": 4,
        "decoder_start_token_id": 0,
        "pad_token_id": 0,
    }
    code, short, _ = _estimate(capsys, tmp_path, t5, "--decoder-len", "16")
    code_long, long, _ = _estimate(capsys, tmp_path, t5, "--decoder-len", "128")
    assert code == code_long == 0 and long["total_flops"] > short["total_flops"]
    assert "16 decoder tokens per sequence" in short["measured"]["basis"]
