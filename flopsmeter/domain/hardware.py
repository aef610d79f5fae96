"""Accelerator peaks per SageMaker instance type, and the hardware ceiling of a job.

Peaks are dense (no 2:4 sparsity) tensor FLOP/s per chip, from vendor data sheets (see
``shared/research/regulation.md`` Q5). The guideline counts every operation the same whatever its
precision, so the ceiling uses the highest dense peak the chip has (FP8 where it exists): a true upper
bound at utilisation 1.0. The BF16 ceiling is reported next to it for comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TERA = 1e12


@dataclass(frozen=True)
class Accelerator:
    name: str
    bf16_dense_tflops: float  # FP16 for chips without BF16 (V100, T4)
    fp8_dense_tflops: float | None
    source: str

    @property
    def max_dense_flops_per_s(self) -> float:
        return max(self.bf16_dense_tflops, self.fp8_dense_tflops or 0.0) * TERA

    @property
    def max_precision(self) -> str:
        return "fp8" if (self.fp8_dense_tflops or 0.0) > self.bf16_dense_tflops else "bf16"


A100 = Accelerator("NVIDIA A100", 312.0, None, "NVIDIA A100 Tensor Core GPU data sheet")
H100 = Accelerator("NVIDIA H100 SXM", 989.4, 1978.9, "NVIDIA H100 Tensor Core GPU data sheet (SXM)")
H200 = Accelerator("NVIDIA H200 SXM", 989.4, 1978.9, "NVIDIA H200 data sheet (same compute as H100 SXM)")
B200 = Accelerator("NVIDIA B200", 2250.0, 4500.0, "NVIDIA HGX B200 data sheet (dense)")
A10G = Accelerator("NVIDIA A10G", 125.0, None, "NVIDIA A10 data sheet (the A10G has less; A10 used as upper bound)")
L4 = Accelerator("NVIDIA L4", 121.0, 242.0, "NVIDIA L4 data sheet (dense)")
L40S = Accelerator("NVIDIA L40S", 362.05, 733.0, "NVIDIA L40S data sheet (dense)")
TRAINIUM = Accelerator("AWS Trainium", 190.0, 190.0, "AWS Trainium (trn1) specifications")
TRAINIUM2 = Accelerator("AWS Trainium2", 667.0, 1299.0, "AWS Trainium2 (trn2) specifications (dense)")
V100 = Accelerator("NVIDIA V100", 125.0, None, "NVIDIA V100 data sheet (FP16 mixed precision)")
T4 = Accelerator("NVIDIA T4", 65.0, None, "NVIDIA T4 data sheet (FP16 mixed precision)")


@dataclass(frozen=True)
class InstanceSpec:
    instance_type: str
    accelerator: Accelerator
    chips: int


def _family(accelerator: Accelerator, chips_by_size: dict[str, int], prefix: str) -> dict[str, InstanceSpec]:
    return {f"{prefix}.{size}": InstanceSpec(f"{prefix}.{size}", accelerator, n) for size, n in chips_by_size.items()}


_G_SIZES = {
    "xlarge": 1,
    "2xlarge": 1,
    "4xlarge": 1,
    "8xlarge": 1,
    "16xlarge": 1,
    "12xlarge": 4,
    "24xlarge": 4,
    "48xlarge": 8,
}

INSTANCE_CATALOG: dict[str, InstanceSpec] = {
    **_family(A100, {"24xlarge": 8}, "ml.p4d"),
    **_family(A100, {"24xlarge": 8}, "ml.p4de"),
    **_family(H100, {"48xlarge": 8, "4xlarge": 1}, "ml.p5"),
    **_family(H200, {"48xlarge": 8}, "ml.p5e"),
    **_family(H200, {"48xlarge": 8}, "ml.p5en"),
    **_family(B200, {"48xlarge": 8}, "ml.p6-b200"),
    **_family(A10G, _G_SIZES, "ml.g5"),
    **_family(L4, _G_SIZES, "ml.g6"),
    **_family(L40S, _G_SIZES, "ml.g6e"),
    **_family(TRAINIUM, {"2xlarge": 1, "32xlarge": 16}, "ml.trn1"),
    **_family(TRAINIUM, {"32xlarge": 16}, "ml.trn1n"),
    **_family(TRAINIUM2, {"48xlarge": 16}, "ml.trn2"),
    **_family(V100, {"2xlarge": 1, "8xlarge": 4, "16xlarge": 8}, "ml.p3"),
    **_family(V100, {"24xlarge": 8}, "ml.p3dn"),
    **_family(
        T4, {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1, "12xlarge": 4, "metal": 8}, "ml.g4dn"
    ),
}

# Unknown instance type: the fastest chip we know, eight of them per instance. Deliberately high, never zero.
UNKNOWN_INSTANCE_ACCELERATOR = max(
    (s.accelerator for s in INSTANCE_CATALOG.values()), key=lambda a: a.max_dense_flops_per_s
)
UNKNOWN_INSTANCE_CHIPS = 8


@dataclass(frozen=True)
class HardwareCeiling:
    """chips x seconds x peak: the most compute the job's hardware could have done."""

    instance_type: str
    instance_count: int
    accelerator: str
    chips_per_instance: int
    seconds: float
    peak_flops_per_chip: float
    precision: str
    flops: float
    bf16_flops: float
    known_instance: bool
    peak_source: str
    warnings: tuple[str, ...] = ()


def lookup_instance(instance_type: str) -> InstanceSpec | None:
    key = instance_type.strip().lower()
    if not key.startswith("ml."):
        key = "ml." + key
    return INSTANCE_CATALOG.get(key)


def hardware_ceiling(instance_type: str, instance_count: int, seconds: float) -> HardwareCeiling:
    """The compute ceiling at utilisation 1.0. Unknown instance types get a conservative default and a warning.

    A missing or invalid duration or count is an error: a ceiling of zero would be silently optimistic.
    """
    if isinstance(instance_count, bool) or not isinstance(instance_count, int) or instance_count < 1:
        raise ValueError(f"instance count must be an integer >= 1, got {instance_count!r}")
    if not isinstance(seconds, int | float) or math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ValueError(f"training seconds must be a finite number >= 0, got {seconds!r}")
    spec = lookup_instance(instance_type)
    warnings: tuple[str, ...] = ()
    if spec is None:
        accelerator, chips = UNKNOWN_INSTANCE_ACCELERATOR, UNKNOWN_INSTANCE_CHIPS
        warnings = (
            f"instance type {instance_type!r} is not in the accelerator catalog; the ceiling assumes "
            f"{chips} x {accelerator.name} at {accelerator.max_dense_flops_per_s / TERA:.0f} TFLOP/s (conservative)",
        )
    else:
        accelerator, chips = spec.accelerator, spec.chips
    total_chips = chips * instance_count
    peak = accelerator.max_dense_flops_per_s
    return HardwareCeiling(
        instance_type=instance_type,
        instance_count=instance_count,
        accelerator=accelerator.name,
        chips_per_instance=chips,
        seconds=float(seconds),
        peak_flops_per_chip=peak,
        precision=accelerator.max_precision,
        flops=total_chips * float(seconds) * peak,
        bf16_flops=total_chips * float(seconds) * accelerator.bf16_dense_tflops * TERA,
        known_instance=spec is not None,
        peak_source=accelerator.source,
        warnings=warnings,
    )
