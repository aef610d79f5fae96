"""The pre-flight beyond the closed form: a vision-language config's tower per image, and a config the closed form
does not cover, measured on the ``meta`` device as the meter measures it (``flopsmeter.training.config_cost``; torch
is imported there, and its absence said in one line)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from flopsmeter.cli.main import UsageError
from flopsmeter.domain.errors import FlopsMeterError, InvalidModelSpec
from flopsmeter.domain.methods import FineTuning
from flopsmeter.domain.reference import aws_sample_flops, six_nd_flops
from flopsmeter.domain.shape import TOWER_KEYS
from flopsmeter.domain.towers import VisionTower, tower_flops

Count = Callable[..., int]  # the CLI's count parser: (text, flag, minimum=) -> int, UsageError when bad


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--images", default="0", help="vision-language config: images the run feeds (its tower per image)")
    p.add_argument("--patches-per-image", help="patches per image (default: the config's image size, CLIP / SigLIP)")
    p.add_argument("--decoder-len", help="encoder-decoder config: decoder tokens per sequence (default: --seq-len)")


def add_images(args: argparse.Namespace, config: dict[str, Any], images: int, tuning: FineTuning,
               into: tuple[dict[str, Any], list[str]], count: Count) -> float:  # fmt: skip
    """A vision-language config's tower, per image (``flopsmeter.domain.towers``): its FLOPs over ``images``, added to
    the report's breakdown and total (``into``: the report and its warnings)."""
    report, warnings = into
    patches = None if args.patches_per_image is None else count(args.patches_per_image, "--patches-per-image",
                                                                 minimum=1)  # fmt: skip
    try:
        tower = VisionTower.from_hf_config(config)
    except InvalidModelSpec as err:
        raise UsageError(f"--images: {err}") from err
    if patches is None:
        side = (config.get("vision_config") or {}).get("image_size")
        if not isinstance(side, int) or side < tower.patch_size:
            raise UsageError("--patches-per-image is needed: the config gives no image size")
        patches = tower.patches(side, side)
    trains = tuning.method == "full"
    per_image = tower_flops(tower, patches, tower_trainable=trains, projector_trainable=True)
    report["breakdown"]["vision_tower"] = per_image.training * images
    report["total_flops"] += per_image.training * images
    report["images"] = {"images": images, "patches_per_image": patches, "tower_trainable": trains,
                        "flops_per_image": per_image.training}  # fmt: skip
    state = "trained" if trains else "frozen"
    warnings.append(f"{images} images of {patches} patches through the {tower.model_type} tower ({state}, "
                    "projector trained); the image tokens are in --tokens")  # fmt: skip
    return per_image.training * images


def on_meta(args: argparse.Namespace, named: tuple[str, dict[str, Any]], run: tuple[int, int],
            tuning_of: Callable[[argparse.Namespace], FineTuning], count: Count,
            error: InvalidModelSpec) -> tuple[dict[str, Any], float, list[str]]:  # fmt: skip
    """A config the closed form refuses: built on meta and measured as the meter measures it (needs torch);
    ``named``: (its name, the config), ``run``: (tokens per sequence, tokens), ``tuning_of`` and ``count``: the CLI's
    parsers. A vision tower's cost depends on the images: refused without them."""
    from flopsmeter.training.config_cost import measure_config  # torch is imported inside, when there

    config_name, config = named
    if any(config.get(key) for key in TOWER_KEYS):
        raise UsageError(f"{error}; or give --images (and --patches-per-image) to count the tower per image") from error
    seq_len, tokens = run
    tuning = tuning_of(args)
    decoder = None if args.decoder_len is None else count(args.decoder_len, "--decoder-len", minimum=1)

    try:
        cost = measure_config(config, seq_len, tuning, decoder_len=decoder)
    except FlopsMeterError as err:
        raise UsageError(f"{error}; {err}") from err
    report: dict[str, Any] = {
        "model": {"config": config_name, "model_type": str(config.get("model_type", "")),
                  "total_params": cost.total_params, "active_params": cost.total_params,
                  "trainable_params": cost.trainable_params, "ignored_towers": []},  # fmt: skip
        "fine_tuning": {"method": tuning.method, "input_grads_in_every_layer": tuning.input_requires_grad},
        "seq_len": seq_len, "tokens": tokens, "formula_version": "meta",
        "flops_per_token": cost.training, "flops_per_token_forward": cost.forward,
        "flops_per_token_backward": cost.training - cost.forward, "total_flops": cost.training * tokens,
        "breakdown": {"measured_on_meta": cost.training * tokens}, "recompute_flops": cost.recompute * tokens,
        "measured": cost.as_dict(),
        "comparison": {"six_nd": six_nd_flops(cost.total_params, tokens),
                       "aws_sample": aws_sample_flops(cost.total_params, cost.trainable_params, tokens)},
    }  # fmt: skip
    note = f"the closed form does not cover this config ({error}): {cost.basis}"
    return report, cost.training * tokens, [note]
