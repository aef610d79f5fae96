"""Parameter counts at their *logical* size, whatever the storage (after PEFT adapters are attached).

* DeepSpeed ZeRO-3 partitions parameters and leaves ``numel() == 0``: ``ds_numel`` is the full size;
* FSDP (1) flattens and shards parameters into a ``FlatParameter``: ``_numels`` lists the original sizes;
  FSDP2 parameters are ``DTensor``s whose ``numel()`` is already the global size;
* bitsandbytes ``Params4bit`` packs two 4-bit values per byte (and more per element with a wider storage
  dtype): the logical size is ``quant_state.shape`` (else ``numel x 2 x element_size``, as transformers).

They are recorded and compared with the formula's counts (``model.py``: a large gap is a warning).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ParamCounts:
    total: int  # logical size of every parameter (LoRA adapters included)
    trainable: int
    adapters: int  # LoRA adapter parameters
    quantized_4bit: int  # parameters stored as 4-bit (logical size)
    partitioned: int  # parameters whose local storage was not their full size (ZeRO-3, FSDP)
    saved_copies: int = 0  # PEFT modules_to_save: the trainable copies (the original module is counted once)


def unwrap(model: Any) -> Any:
    """Strip DDP / FSDP / DeepSpeed engine / torch.compile wrappers (``.module`` / ``._orig_mod``)."""
    seen = 0
    while seen < 8:
        inner = getattr(model, "_orig_mod", None) or (
            getattr(model, "module", None) if type(model).__name__ in _WRAPPERS else None
        )
        if inner is None:
            return model
        model, seen = inner, seen + 1
    return model


_WRAPPERS = {
    "DistributedDataParallel",
    "DataParallel",
    "FullyShardedDataParallel",
    "DeepSpeedEngine",
    "PipelineEngine",
    "OptimizedModule",
}


def _is_4bit(p: Any) -> bool:
    return type(p).__name__ == "Params4bit" or getattr(p, "quant_state", None) is not None


def logical_numel(p: Any) -> tuple[int, bool]:
    """(logical element count, whether the local storage differed from it) for one parameter."""
    ds_numel = getattr(p, "ds_numel", None)
    if isinstance(ds_numel, int) and ds_numel > 0:
        return ds_numel, int(p.numel()) != ds_numel
    numels = getattr(p, "_numels", None)  # FSDP1 FlatParameter: original sizes, no padding
    if numels is not None:
        return int(sum(int(n) for n in numels)), True
    if _is_4bit(p):
        quant_state = getattr(p, "quant_state", None)
        shape = getattr(quant_state, "shape", None)
        if shape is not None:
            return int(math.prod(int(d) for d in shape)), False
        if getattr(p, "bnb_quantized", True):
            return int(p.numel()) * 2 * int(p.element_size()), False
    return int(p.numel()), False


def _fsdp_flat_params(model: Any) -> list[Any]:
    """FSDP1 flat parameters whose original parameters are exposed (``use_orig_params=True``)."""
    flats = []
    for module in model.modules():
        handle = getattr(module, "_handle", None)
        flat = getattr(handle, "flat_param", None)
        if flat is not None and getattr(flat, "_params", None) is not None and getattr(flat, "_numels", None):
            flats.append(flat)
    return flats


def named_logical_params(model: Any) -> Iterator[tuple[str, int, bool, bool, bool]]:
    """(name, logical numel, requires_grad, 4-bit, partitioned) for every distinct parameter."""
    covered: set[int] = set()
    for flat in _fsdp_flat_params(model):
        for i, (orig, numel) in enumerate(zip(flat._params, flat._numels, strict=False)):
            covered.add(id(orig))
            names = getattr(flat, "_fqns", None)
            name = names[i] if names and i < len(names) else f"fsdp_flat.{i}"
            yield name, int(numel), bool(orig.requires_grad), False, True
    for name, p in model.named_parameters():
        if id(p) in covered:
            continue
        numel, partitioned = logical_numel(p)
        yield name, numel, bool(p.requires_grad), _is_4bit(p), partitioned


def count_parameters(model: Any) -> ParamCounts:
    total = trainable = adapters = quantized = partitioned = saved = 0
    for name, numel, requires_grad, is_4bit, is_partitioned in named_logical_params(model):
        total += numel
        saved += numel if ".modules_to_save." in name else 0
        trainable += numel if requires_grad else 0
        adapters += numel if ".lora_" in name or name.startswith("lora_") else 0
        quantized += numel if is_4bit else 0
        partitioned += numel if is_partitioned else 0
    return ParamCounts(total, trainable, adapters, quantized, partitioned, saved)
