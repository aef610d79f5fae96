"""Vision towers: the FLOPs of turning one image into the language model's input tokens.

A vision-language model (LLaVA-shaped: a CLIP / SigLIP ViT and a two-layer projector; Qwen2-VL-shaped: a ViT over
patches, 2x2 patches merged into one token by an MLP) runs its tower once per image; the language model then reads
the image's tokens with the text (they are in ``input_ids``, so the language model's closed form counts them). Per
image of ``p`` patches the tower's matmuls are, as ``FlopCounterMode`` counts them:

* the patch embedding (a convolution: one ``channels x patch area`` by ``width`` product per patch);
* every layer over its ``n`` tokens (``p``, plus a class token for CLIP): the attention projections, ``QK^T`` and
  ``AV`` over the image's own tokens (``n x n``: attention stays within an image), the MLP;
* the projector (LLaVA) or merger (Qwen2-VL) over the tokens it gives the language model.

Backward runs where a gradient goes: into a trainable tower (down to its patch embedding's weight, never into the
pixels) and a trainable projector; the layers after the one whose features are used (LLaVA reads the
second-to-last) run forward only. A fused attention kernel's ``QK^T`` recompute is reported apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flopsmeter.domain.errors import InvalidModelSpec
from flopsmeter.domain.flops import Tally

VISION = "vision_tower"
PROJECTOR = "projector"


@dataclass(frozen=True)
class VisionTower:
    """What decides a vision tower's FLOPs per image."""

    model_type: str
    width: int
    layers: int
    intermediate: int
    patch_inputs: int  # values per patch: channels x (temporal) x patch x patch
    patch_size: int
    class_token: bool
    layers_used: int  # layers whose output reaches the features (the rest run forward only)
    merge: int  # patches per language-model token along each side (Qwen2-VL merges 2 x 2)
    projector: tuple[tuple[int, int], ...]  # (in, out) of each projector matmul, per token it gives the LM
    projector_class_token: bool = False  # LLaVA's "full" feature strategy keeps the class token
    projector_norm: bool = False  # a norm with weights before the projector's first matmul (Qwen2-VL's merger)
    fused_attention: bool = False

    @classmethod
    def from_hf_config(cls, config: Mapping[str, Any]) -> VisionTower:
        """From a LLaVA- or Qwen2-VL-shaped model's config (``vision_config`` inside it)."""
        vision = config.get("vision_config")
        if not isinstance(vision, Mapping):
            raise InvalidModelSpec("the config has no vision_config")
        kind = str(vision.get("model_type", ""))
        if kind in ("clip_vision_model", "siglip_vision_model"):
            return _vit(config, vision, kind)
        if kind == "qwen2_vl_vision" or str(config.get("model_type")) == "qwen2_vl":
            return _qwen2_vl(config, vision)
        raise InvalidModelSpec(f"vision tower {kind or 'of unknown type'}: the closed form counts CLIP / SigLIP "
                               "(LLaVA-shaped) and Qwen2-VL towers")  # fmt: skip

    def patches(self, height: int, width: int, frames: int = 1) -> int:
        """Patches of an image (or a clip of ``frames`` temporal patches) of ``height`` x ``width`` pixels."""
        return frames * (height // self.patch_size) * (width // self.patch_size)

    def tokens_for_lm(self, patches: int) -> int:
        """Image tokens the language model reads for an image of ``patches`` patches."""
        return patches // (self.merge * self.merge) + (1 if self.projector_class_token else 0)


@dataclass(frozen=True)
class TowerFlops:
    """One image's tower FLOPs: forward, backward (where a gradient goes), and a fused kernel's recompute."""

    forward: float
    backward: float
    recompute: float

    @property
    def training(self) -> float:
        return self.forward + self.backward


def _int(mapping: Mapping[str, Any], *keys: str, default: int | None = None) -> int:
    for key in keys:
        value = mapping.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    if default is None:
        raise InvalidModelSpec(f"vision_config lacks {' / '.join(keys)!r}")
    return default


def _vit(config: Mapping[str, Any], vision: Mapping[str, Any], kind: str) -> VisionTower:
    layers = _int(vision, "num_hidden_layers")
    feature = config.get("vision_feature_layer", -1)
    if not isinstance(feature, int) or isinstance(feature, bool):
        raise InvalidModelSpec("vision_feature_layer as a list (several layers' features) is not covered")
    used = layers + 1 + feature if feature < 0 else feature  # hidden_states[0] is the embeddings' output
    text = config.get("text_config")
    lm_width = _int(text if isinstance(text, Mapping) else {}, "hidden_size")
    width = _int(vision, "hidden_size")
    patch = _int(vision, "patch_size")
    full = config.get("vision_feature_select_strategy") == "full"
    return VisionTower(kind, width, layers, _int(vision, "intermediate_size"), _int(vision, "num_channels",
                       default=3) * patch * patch, patch, kind == "clip_vision_model", max(0, min(layers, used)),
                       1, ((width, lm_width), (lm_width, lm_width)), full)  # fmt: skip


def _qwen2_vl(config: Mapping[str, Any], vision: Mapping[str, Any]) -> VisionTower:
    width = _int(vision, "embed_dim")
    merge = _int(vision, "spatial_merge_size", default=2)
    patch = _int(vision, "patch_size")
    inputs = _int(vision, "in_channels", "in_chans", default=3) * _int(vision, "temporal_patch_size", default=2)
    merged = width * merge * merge
    out = _int(vision, "hidden_size")
    layers = _int(vision, "depth")
    mlp = int(width * float(vision.get("mlp_ratio", 4)))
    return VisionTower("qwen2_vl_vision", width, layers, mlp, inputs * patch * patch, patch, False, layers, merge,
                       ((merged, merged), (merged, out)), projector_norm=True)  # fmt: skip


def tower_flops(tower: VisionTower, patches: int, *, tower_trainable: bool, projector_trainable: bool) -> TowerFlops:
    """FLOPs of one image of ``patches`` patches through the tower and its projector."""
    if isinstance(patches, bool) or not isinstance(patches, int) or patches < 1:
        raise InvalidModelSpec(f"patches per image must be an integer >= 1, got {patches!r}")
    t = Tally()
    n = patches + (1 if tower.class_token else 0)
    w = tower.width
    grad = t.matmul(VISION, 2.0 * patches * tower.patch_inputs * w, False, tower_trainable)
    recompute = 0.0
    for layer in range(tower.layers):
        live = grad and layer < tower.layers_used
        for _ in range(4):  # q, k, v, output projections (Qwen2-VL fuses q, k, v: the same products)
            t.matmul(VISION, 2.0 * n * w * w, live, live)
        for _ in range(2):  # QK^T and AV over the image's own tokens
            t.matmul(VISION, 2.0 * n * n * w, live, live)
        recompute += 2.0 * n * n * w if live and tower.fused_attention else 0.0
        t.matmul(VISION, 2.0 * n * w * tower.intermediate, live, live)
        t.matmul(VISION, 2.0 * n * tower.intermediate * w, live, live)
    lm_tokens = patches // (tower.merge * tower.merge) + (1 if tower.projector_class_token else 0)
    into = grad or (projector_trainable and tower.projector_norm)  # a trainable norm's output needs a gradient
    for d_in, d_out in tower.projector:
        into = t.matmul(PROJECTOR, 2.0 * lm_tokens * d_in * d_out, into, projector_trainable)
    return TowerFlops(t.forward[0], t.backward[0], recompute)
