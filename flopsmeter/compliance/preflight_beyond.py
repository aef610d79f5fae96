"""The pre-flight beyond the closed form: a vision-language config's tower per image, and a config the closed form
does not cover, measured on the ``meta`` device as the meter measures it (``flopsmeter.training.config_cost``; torch
is imported there, and its absence said in one line)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flopsmeter.compliance.errors import InvalidRequest
from flopsmeter.domain.errors import InvalidModelSpec
from flopsmeter.domain.methods import FineTuning
from flopsmeter.domain.reference import aws_sample_flops, six_nd_flops
from flopsmeter.domain.shape import TOWER_KEYS
from flopsmeter.domain.towers import VisionTower, tower_flops
from flopsmeter.errors import FlopsMeterError


@dataclass(frozen=True)
class Beyond:
    """What a planned run says that only the paths beyond the closed form read."""

    seq_len: int
    tokens: int
    tuning: FineTuning
    images: int = 0
    patches_per_image: int | None = None  # None: from the config's image size
    decoder_len: int | None = None  # None: the encoder's length


def add_images(run: Beyond, config: dict[str, Any], report: dict[str, Any], warnings: list[str]) -> float:
    """A vision-language config's tower, per image (``flopsmeter.domain.towers``): its FLOPs over ``run.images``,
    added to the report's breakdown and total and returned."""
    try:
        tower = VisionTower.from_hf_config(config)
    except InvalidModelSpec as err:
        raise InvalidRequest(f"--images: {err}") from err
    patches = run.patches_per_image
    if patches is None:
        side = (config.get("vision_config") or {}).get("image_size")
        if not isinstance(side, int) or side < tower.patch_size:
            raise InvalidRequest("--patches-per-image is needed: the config gives no image size")
        patches = tower.patches(side, side)
    trains = run.tuning.method == "full"
    per_image = tower_flops(tower, patches, tower_trainable=trains, projector_trainable=True)
    flops = per_image.training * run.images
    report["breakdown"]["vision_tower"] = flops
    report["total_flops"] += flops
    report["images"] = {
        "images": run.images,
        "patches_per_image": patches,
        "tower_trainable": trains,
        "flops_per_image": per_image.training,
    }
    state = "trained" if trains else "frozen"
    warnings.append(
        f"{run.images} images of {patches} patches through the {tower.model_type} tower ({state}, projector "
        "trained); the image tokens are in --tokens"
    )
    return flops


def on_meta(run: Beyond, config_name: str, config: dict[str, Any], error: InvalidModelSpec) -> dict[str, Any]:
    """A config the closed form refuses, built on meta and measured as the meter measures it (needs torch): the
    report's model, tuning, per-token figures, total and warnings. A vision tower's cost depends on the images:
    refused without them."""
    if any(config.get(key) for key in TOWER_KEYS):
        raise InvalidRequest(f"{error}; or give --images (and --patches-per-image) to count the tower per image")
    from flopsmeter.training.config_cost import measure_config  # torch is imported inside, when there

    try:
        cost = measure_config(config, run.seq_len, run.tuning, decoder_len=run.decoder_len)
    except FlopsMeterError as err:
        raise InvalidRequest(f"{error}; {err}") from err
    tokens = run.tokens
    return {
        "model": {
            "config": config_name,
            "model_type": str(config.get("model_type", "")),
            "total_params": cost.total_params,
            "active_params": cost.total_params,
            "trainable_params": cost.trainable_params,
            "ignored_towers": [],
        },
        "fine_tuning": {"method": run.tuning.method, "input_grads_in_every_layer": run.tuning.input_requires_grad},
        "seq_len": run.seq_len,
        "tokens": tokens,
        "formula_version": "meta",
        "flops_per_token": cost.training,
        "flops_per_token_forward": cost.forward,
        "flops_per_token_backward": cost.training - cost.forward,
        "total_flops": cost.training * tokens,
        "breakdown": {"measured_on_meta": cost.training * tokens},
        "recompute_flops": cost.recompute * tokens,
        "measured": cost.as_dict(),
        "comparison": {
            "six_nd": six_nd_flops(cost.total_params, tokens),
            "aws_sample": aws_sample_flops(cost.total_params, cost.trainable_params, tokens),
        },
        "warnings": [f"the closed form does not cover this config ({error}): {cost.basis}"],
    }
