"""Vision-language models: the vision tower counted per image, from the model that runs (frozen or trained).

The language model reads the image's tokens with the text (they are in ``input_ids``) and is counted by its closed
form like any decoder; the tower (and its projector) runs once per image, so its FLOPs come from the images the
tower is called with: a forward pre-hook on the tower module reads how many patches each image has (the pixel
tensor's shape for a CLIP / SigLIP tower; ``grid_thw`` for a Qwen2-VL tower, a few integers the model itself reads
on the host) and counts ``flopsmeter.domain.towers.tower_flops`` per image, with a backward where the tower or the
projector trains. A tower the closed form does not cover is found by the measured first steps (``probe.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from flopsmeter.domain.towers import TowerFlops, VisionTower, tower_flops

TOWER_NAMES = ("vision_tower", "visual", "vision_model")
PROJECTOR_NAMES = ("multi_modal_projector", "mm_projector")
LANGUAGE_NAMES = ("language_model",)


@dataclass(frozen=True)
class Multimodal:
    """The parts of a vision-language model: its tower, projector (None when inside the tower) and language model."""

    tower: Any
    projector: Any
    language: Any


def _named(model: Any, names: tuple[str, ...]) -> Any:
    for full_name, module in model.named_modules():
        if full_name.rsplit(".", 1)[-1] in names:
            return module
    return None


def find_parts(model: Any) -> Multimodal | None:
    """The tower, projector and language model of ``model``, or None when it has no vision tower."""
    tower = _named(model, TOWER_NAMES)
    if tower is None:
        return None
    return Multimodal(tower, _named(model, PROJECTOR_NAMES), _named(model, LANGUAGE_NAMES))


def _trains(module: Any) -> bool:
    return module is not None and any(p.requires_grad for p in module.parameters())


@dataclass(frozen=True)
class Tower:
    """A vision tower on the profile: its shape and what of it trains."""

    shape: VisionTower
    trainable: bool
    projector_trainable: bool
    _cache: dict[int, TowerFlops] = field(default_factory=dict, compare=False, repr=False)

    @property
    def backward(self) -> bool:
        return self.trainable or self.projector_trainable

    def image(self, patches: int) -> TowerFlops:
        """One image's FLOPs (kept per patch count: images of a dataset come in a few sizes)."""
        found = self._cache.get(patches)
        if found is None:
            found = tower_flops(self.shape, patches, tower_trainable=self.trainable,
                                projector_trainable=self.projector_trainable)  # fmt: skip
            self._cache[patches] = found
        return found

    def as_dict(self) -> dict[str, Any]:
        return {"model_type": self.shape.model_type, "layers": self.shape.layers, "width": self.shape.width,
                "trainable": self.trainable, "projector_trainable": self.projector_trainable}  # fmt: skip


def tower_of(model: Any, config: dict[str, Any], parts: Multimodal, *, fused: bool) -> Tower:
    """The tower of a live model (``VisionTower.from_hf_config`` raises for a tower the closed form does not know)."""
    shape = VisionTower.from_hf_config(config)
    projector = parts.projector if parts.projector is not None else getattr(parts.tower, "merger", None)
    tower_params = {id(p) for p in parts.tower.parameters()} - {
        id(p) for p in (projector.parameters() if projector is not None else ())
    }
    trainable = any(p.requires_grad for p in parts.tower.parameters() if id(p) in tower_params)
    return Tower(replace(shape, fused_attention=fused), trainable, _trains(projector))


def read_images(tower: VisionTower, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[int] | None:
    """Patches per image of a tower call: from ``grid_thw`` (t, h, w per image), else a pixel tensor of images."""
    grid = kwargs.get("grid_thw", args[1] if len(args) > 1 else None)
    if grid is not None and hasattr(grid, "tolist"):
        return [int(t) * int(h) * int(w) for t, h, w in grid.tolist()]
    pixels = args[0] if args else kwargs.get("pixel_values")
    shape = getattr(pixels, "shape", None)
    if shape is None or len(shape) < 4:
        return None
    images = 1
    for dim in shape[:-3]:
        images *= int(dim)
    return [tower.patches(int(shape[-2]), int(shape[-1]))] * images
