"""FLOP formulas for what ``FlopCounterMode`` (torch 2.13) counts as nothing.

* ``aten.addmm_``: the in-place matmul TRL's chunked / fused LM head uses in backward;
* ``aten._grouped_mm``: grouped-GEMM mixture-of-experts kernels (one GEMM per expert over its tokens);
* ``aten._scaled_dot_product_flash_attention_for_cpu`` and its backward: SDPA on CPU (the CUDA kernels, fused
  and variable-length, are in torch's own registry).

``COUNTER_MAPPING`` is passed as ``FlopCounterMode(custom_mapping=...)`` by measured mode and by the accuracy
benchmark's ground truth.
"""

from __future__ import annotations

from typing import Any

GEMM = 2  # multiply + add


def addmm_inplace_flop(self_shape: Any, a_shape: Any, b_shape: Any, *args: Any, **kwargs: Any) -> int:
    """``acc.addmm_(a, b)``: the matmul a @ b, as ``aten.addmm`` counts it."""
    m, k = (int(d) for d in a_shape)
    return GEMM * m * k * int(b_shape[1])


def grouped_mm_flop(a_shape: Any, b_shape: Any, *args: Any, **kwargs: Any) -> int:
    """``_grouped_mm(a, b, offs)``: every token meets one expert's matrix (the groups split the token axis)."""
    a: list[int] = [int(d) for d in a_shape]
    b: list[int] = [int(d) for d in b_shape]
    if len(a) == 2 and len(b) == 3:  # tokens x K @ experts x K x N
        return GEMM * a[0] * a[1] * b[2]
    if len(a) == 3 and len(b) == 3:  # batched per group
        return GEMM * a[0] * a[1] * a[2] * b[2]
    if len(a) == 2 and len(b) == 2:  # weight gradient: K x tokens @ tokens x N, split by offs
        return GEMM * a[0] * a[1] * b[1]
    return GEMM * a[-2] * a[-1] * b[-1]


def cpu_sdpa_flop(query_shape: Any, key_shape: Any, value_shape: Any, *args: Any, **kwargs: Any) -> int:
    from torch.utils import flop_counter

    count: Any = flop_counter.sdpa_flop_count
    return int(count(query_shape, key_shape, value_shape))


def cpu_sdpa_backward_flop(grad_out_shape: Any, query_shape: Any, key_shape: Any, value_shape: Any, *args: Any,
                           **kwargs: Any) -> int:  # fmt: skip
    from torch.utils import flop_counter

    count: Any = flop_counter.sdpa_backward_flop_count
    return int(count(grad_out_shape, query_shape, key_shape, value_shape))


def counter_mapping() -> dict[Any, Any]:
    """``custom_mapping`` for ``FlopCounterMode``: the formulas above, keyed by the ops torch has here."""
    import torch

    aten = torch.ops.aten
    mapping: dict[Any, Any] = {aten.addmm_: addmm_inplace_flop}
    for name, formula in (
        ("_grouped_mm", grouped_mm_flop),
        ("_scaled_dot_product_flash_attention_for_cpu", cpu_sdpa_flop),
        ("_scaled_dot_product_flash_attention_for_cpu_backward", cpu_sdpa_backward_flop),
    ):
        if hasattr(aten, name):
            mapping[getattr(aten, name)] = formula
    return mapping


class _GlobalOnly:
    """Stands in for ``FlopCounterMode``'s module tracker: every FLOP goes to "Global" only, with no module hooks
    (they are half of the counter's host cost, and only the total is read)."""

    parents = frozenset({"Global"})

    def __enter__(self) -> _GlobalOnly:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def flop_counter(*, per_module: bool = False, **kwargs: Any) -> Any:
    """A ``FlopCounterMode`` that also counts the ops above; its total only unless ``per_module``."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False, custom_mapping=counter_mapping(), **kwargs)
    if not per_module and hasattr(counter, "mod_tracker"):
        counter.mod_tracker = _GlobalOnly()  # type: ignore[assignment]
    return counter
