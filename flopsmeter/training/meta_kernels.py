"""What the ``meta`` copy runs instead of what ``meta`` cannot run as the real model does.

* SDPA: on ``meta`` it takes its unfused math path (no recompute in backward); ``fused_sdpa`` runs the fused CPU
  kernel instead, whose FLOPs torch counts as the CUDA kernels' (the backward recomputes QK^T), and notes that
  recompute apart.
* transformers reads a padding mask's values to skip it for SDPA (``.all()``); ``mask_without_data`` keeps the mask
  (the FLOPs do not depend on it).
* transformers 4.x / 5.0 disable autocast around their rotary embeddings with ``torch.autocast(device_type="meta")``
  (5.0 asks ``torch.is_autocast_enabled("meta")`` first), which torch refuses; ``autocast_on_meta`` makes both
  answer as if autocast were off (autocast changes no FLOP count).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def fused_sdpa(recompute: list[float]) -> Iterator[None]:
    """``F.scaled_dot_product_attention`` as the fused CPU kernel (meta picks the math path); each call with a
    gradient adds its QK^T to ``recompute`` (the fused backward recomputes it)."""
    import torch

    functional = torch.nn.functional
    original = functional.scaled_dot_product_attention

    def sdpa(query: Any, key: Any, value: Any, attn_mask: Any = None, dropout_p: float = 0.0, is_causal: bool = False,
             scale: float | None = None, enable_gqa: bool = False) -> Any:  # fmt: skip
        trained_mask = getattr(attn_mask, "requires_grad", False)  # T5's position bias: torch takes the math path
        if value.shape[-1] != query.shape[-1] or trained_mask:  # one head size only in the fused kernel
            return original(query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal,
                            scale=scale, enable_gqa=enable_gqa)  # fmt: skip
        repeat = query.shape[-3] // key.shape[-3]
        if repeat > 1:
            key, value = key.repeat_interleave(repeat, dim=-3), value.repeat_interleave(repeat, dim=-3)
        mask = None if attn_mask is None else attn_mask.to(query.dtype)
        out = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            query, key, value, dropout_p, is_causal, attn_mask=mask, scale=scale
        )[0]
        if torch.is_grad_enabled() and (query.requires_grad or key.requires_grad or value.requires_grad):
            rows = 1
            for dim in query.shape[:-2]:
                rows *= int(dim)
            recompute.append(2.0 * rows * int(query.shape[-2]) * int(key.shape[-2]) * int(query.shape[-1]))
        return out

    functional.scaled_dot_product_attention = sdpa
    try:
        yield
    finally:
        functional.scaled_dot_product_attention = original


@contextlib.contextmanager
def mask_without_data() -> Iterator[None]:
    """transformers skips an all-ones padding mask for SDPA after reading it (``.all()``): not on meta."""
    try:
        from transformers import masking_utils
    except ImportError:
        yield
        return
    original = getattr(masking_utils, "_ignore_causal_mask_sdpa", None)
    if original is None:
        yield
        return
    masking_utils._ignore_causal_mask_sdpa = lambda *args, **kwargs: False
    try:
        yield
    finally:
        masking_utils._ignore_causal_mask_sdpa = original


@contextlib.contextmanager
def autocast_on_meta() -> Iterator[None]:
    """``torch.autocast(device_type="meta", ...)`` as a no-op while the meta copy runs."""
    import torch

    original = torch.autocast

    def autocast(device_type: str, *args: Any, **kwargs: Any) -> Any:
        if device_type == "meta":
            return contextlib.nullcontext()
        return original(device_type, *args, **kwargs)

    enabled = torch.is_autocast_enabled

    def is_enabled(*args: Any) -> bool:  # transformers 5.0 asks before it disables autocast
        return False if args and args[0] == "meta" else enabled(*args)

    torch.autocast = autocast  # type: ignore[assignment,misc]
    torch.is_autocast_enabled = is_enabled  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.autocast = original  # type: ignore[misc]
        torch.is_autocast_enabled = enabled
