"""Vision towers per image: the closed form against FlopCounterMode on tiny LLaVA- and Qwen2-VL-shaped towers,
frozen or trained, and the configs it refuses."""

from __future__ import annotations

import pytest

from flopsmeter.domain.errors import InvalidModelSpec
from flopsmeter.domain.towers import VisionTower, tower_flops
from tests.support.tiny_models import LLAVA_CONFIG as LLAVA
from tests.support.tiny_models import QWEN2_VL_CONFIG as QWEN2_VL


def test_a_llava_tower_reads_its_layers_patches_and_projector() -> None:
    tower = VisionTower.from_hf_config(LLAVA)
    assert (tower.layers, tower.layers_used, tower.class_token, tower.patch_inputs) == (3, 2, True, 3 * 8 * 8)
    assert tower.projector == ((32, 64), (64, 64)) and tower.patches(32, 32) == 16 and tower.tokens_for_lm(16) == 16


def test_a_qwen2_vl_tower_merges_four_patches_per_token() -> None:
    tower = VisionTower.from_hf_config(QWEN2_VL)
    assert tower.merge == 2 and tower.tokens_for_lm(64) == 16 and tower.projector == ((128, 128), (128, 64))


def test_more_patches_never_cost_less_and_training_costs_more() -> None:
    tower = VisionTower.from_hf_config(QWEN2_VL)
    frozen = [tower_flops(tower, p, tower_trainable=False, projector_trainable=False) for p in (16, 64, 256)]
    assert frozen[0].training < frozen[1].training < frozen[2].training and all(f.backward == 0 for f in frozen)
    trained = tower_flops(tower, 64, tower_trainable=True, projector_trainable=True)
    assert trained.backward > trained.forward > 0


@pytest.mark.parametrize(
    "config",
    [{"model_type": "x"}, {"vision_config": {"model_type": "pixtral"}}, {**LLAVA, "vision_feature_layer": [-2, -1]}],
    ids=["no tower", "unknown tower", "several feature layers"],
)
def test_towers_the_closed_form_does_not_know_are_refused(config) -> None:
    with pytest.raises(InvalidModelSpec):
        VisionTower.from_hf_config(config)


def test_patches_must_be_positive() -> None:
    with pytest.raises(InvalidModelSpec, match="patches per image"):
        tower_flops(VisionTower.from_hf_config(LLAVA), 0, tower_trainable=False, projector_trainable=False)


@pytest.mark.torch
@pytest.mark.parametrize("kind", ["llava", "qwen2_vl"])
@pytest.mark.parametrize("tower_trains", [False, True])
@pytest.mark.parametrize("projector_trains", [False, True])
def test_tower_flops_match_flop_counter(kind: str, tower_trains: bool, projector_trains: bool) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from flopsmeter.training.flop_formulas import flop_counter
    from tests.support import trainer_runs

    model = (trainer_runs.llava_model() if kind == "llava" else trainer_runs.qwen2_vl_model()).train()
    tower = VisionTower.from_hf_config(model.config.to_dict())
    module = model.model.vision_tower if kind == "llava" else model.model.visual
    projector = model.model.multi_modal_projector if kind == "llava" else model.model.visual.merger
    for param in module.parameters():
        param.requires_grad_(tower_trains)
    for param in projector.parameters():
        param.requires_grad_(projector_trains)
    if kind == "llava":
        pixels, patches = torch.randn(2, 3, 32, 32), [16, 16]

        def run() -> object:
            return model.model.get_image_features(pixels)
    else:
        grid, patches = torch.tensor([[1, 8, 8], [1, 4, 8]]), [64, 32]
        pixels = torch.randn(96, 3 * 2 * 4 * 4)

        def run() -> object:
            return model.model.visual(pixels, grid_thw=grid)

    with flop_counter() as counter:
        out = run()
        features = getattr(out, "pooler_output", None)
        features = out if features is None else features
        features = torch.cat(list(features)) if isinstance(features, list | tuple) else features
        if features.requires_grad:
            features.float().sum().backward()
    ours = sum(tower_flops(tower, p, tower_trainable=tower_trains, projector_trainable=projector_trains).training
               for p in patches)  # fmt: skip
    assert ours == pytest.approx(counter.get_total_flops(), rel=1e-9)
