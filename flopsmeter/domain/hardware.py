"""Accelerator peaks per SageMaker instance type, and the hardware ceiling of a job.

Peaks are dense (no 2:4 sparsity) tensor FLOP/s per chip, from vendor data sheets (``shared/research/
regulation.md`` Q5 and the source named on each chip). The guideline counts every operation the same whatever
its precision (Annex A.2), so the ceiling uses the highest dense peak the chip has: FP4 on Blackwell, FP8 where
it exists, else BF16/FP16. That is a true upper bound at utilisation 1.0. The BF16 ceiling is reported next to
it for comparison. Where a vendor quotes only a figure with sparsity, that figure is kept as the bound (it is
at most twice the dense peak, never below it) and the source says so.

The instance list covers every accelerated SageMaker training and HyperPod instance type in botocore's
SageMaker model (``TrainingInstanceType``, ``ClusterInstanceType``); a test checks it against the installed
botocore. An unknown type gets the largest known instance: the ceiling never comes out low.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TERA = 1e12


@dataclass(frozen=True)
class Accelerator:
    name: str
    bf16_dense_tflops: float  # FP16 for chips without BF16 (V100, T4), FP32 for chips without tensor cores (K80)
    fp8_dense_tflops: float | None
    source: str
    fp4_dense_tflops: float | None = None

    @property
    def max_dense_flops_per_s(self) -> float:
        return max(self.bf16_dense_tflops, self.fp8_dense_tflops or 0.0, self.fp4_dense_tflops or 0.0) * TERA

    @property
    def max_precision(self) -> str:
        peaks = {
            "bf16": self.bf16_dense_tflops,
            "fp8": self.fp8_dense_tflops or 0.0,
            "fp4": self.fp4_dense_tflops or 0.0,
        }
        return max(peaks, key=lambda k: peaks[k])


_HGX_B200 = "NVIDIA HGX B200 (8 GPUs): 72 PFLOPS FP4 dense; 72 FP8 and 36 FP16/BF16 PFLOPS with sparsity"
A100 = Accelerator("NVIDIA A100", 312.0, None, "NVIDIA A100 Tensor Core GPU data sheet")
H100 = Accelerator("NVIDIA H100 SXM", 989.4, 1978.9, "NVIDIA H100 Tensor Core GPU data sheet (SXM)")
H200 = Accelerator("NVIDIA H200 SXM", 989.4, 1978.9, "NVIDIA H200 data sheet (same compute as H100 SXM)")
B200 = Accelerator("NVIDIA B200", 2250.0, 4500.0, _HGX_B200 + ", per GPU: 9,000 / 4,500 / 2,250 dense", 9000.0)
B300 = Accelerator(
    "NVIDIA B300 (Blackwell Ultra)",
    2250.0,
    4500.0,
    "NVIDIA Blackwell Ultra: 15 PFLOPS dense NVFP4 per GPU (the GB300 figure; HGX B300 lists 108 PF dense FP4 per "
    "8 GPUs, 13.5 each: the higher figure bounds the ceiling); FP8 / BF16 as HGX B300: 4,500 / 2,250 dense",
    15000.0,
)
GB200 = Accelerator(
    "NVIDIA Blackwell (GB200)",
    2500.0,
    5000.0,
    "NVIDIA GB200 NVL72 data sheet: 1,440 / 720 / 360 PFLOPS FP4 / FP8 / FP16 with sparsity per 72 GPUs; dense is "
    "half: 10,000 / 5,000 / 2,500 TFLOPS per GPU",
    10000.0,
)
RTX_PRO_6000 = Accelerator(
    "NVIDIA RTX PRO 6000 Blackwell Server Edition",
    1000.0,
    2000.0,
    "NVIDIA's quoted 4 PFLOPS FP4, 2 PFLOPS FP8, 1 PFLOPS FP16/BF16 (quoted with sparsity: the dense peaks are at "
    "most these, which are kept as the bound)",
    4000.0,
)
RTX_PRO_4500 = Accelerator(
    "NVIDIA RTX PRO 4500 Blackwell Server Edition",
    219.7,
    879.0,
    "RTX PRO 4500 Blackwell tensor peaks with sparsity (hmc-tech.com spec table, from the boost clock): 1,758 FP4, "
    "879 FP8, 219.7 BF16 TFLOPS; kept as the bound (dense is at most these)",
    1758.0,
)
A10G = Accelerator("NVIDIA A10G", 125.0, None, "NVIDIA A10 data sheet (the A10G has less; A10 used as upper bound)")
L4 = Accelerator("NVIDIA L4", 121.0, 242.0, "NVIDIA L4 data sheet (dense)")
L40S = Accelerator("NVIDIA L40S", 362.05, 733.0, "NVIDIA L40S data sheet (dense)")
TRAINIUM = Accelerator("AWS Trainium", 190.0, 190.0, "AWS Neuron docs, Trainium: 190 FP16/BF16/cFP8/TF32 TFLOPS")
TRAINIUM2 = Accelerator("AWS Trainium2", 667.0, 1299.0, "AWS Neuron docs, Trainium2: 1,299 FP8, 667 BF16 TFLOPS dense")
V100 = Accelerator("NVIDIA V100", 125.0, None, "NVIDIA V100 data sheet (FP16 mixed precision)")
T4 = Accelerator("NVIDIA T4", 65.0, None, "NVIDIA T4 data sheet (FP16 mixed precision)")
K80 = Accelerator(
    "NVIDIA K80 (one GK210)", 4.37, None, "NVIDIA Tesla K80: 8.74 TFLOPS FP32 with boost per board of two GK210 GPUs"
)


@dataclass(frozen=True)
class InstanceSpec:
    instance_type: str
    accelerator: Accelerator
    chips: int

    @property
    def peak_flops_per_s(self) -> float:
        return self.chips * self.accelerator.max_dense_flops_per_s


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
# GPUs per size: EC2 G7e and G7 specifications (as listed in kubernetes/autoscaler issue 9854, June 2026)
_G7E_SIZES = {"2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "12xlarge": 2, "24xlarge": 4, "48xlarge": 8}
_G7_SIZES = {"2xlarge": 1, "4xlarge": 1, "8xlarge": 2, "12xlarge": 4, "24xlarge": 4, "48xlarge": 8}

INSTANCE_CATALOG: dict[str, InstanceSpec] = {
    **_family(A100, {"24xlarge": 8}, "ml.p4d"),
    **_family(A100, {"24xlarge": 8}, "ml.p4de"),
    **_family(H100, {"48xlarge": 8, "4xlarge": 1}, "ml.p5"),
    **_family(H200, {"48xlarge": 8}, "ml.p5e"),
    **_family(H200, {"48xlarge": 8}, "ml.p5en"),
    **_family(B200, {"48xlarge": 8}, "ml.p6-b200"),
    **_family(B300, {"48xlarge": 8}, "ml.p6-b300"),
    # one compute tray of a GB200 NVL72 UltraServer: 2 Grace CPUs (144 vCPUs) and 4 Blackwell GPUs
    **_family(GB200, {"36xlarge": 4}, "ml.p6e-gb200"),
    **_family(RTX_PRO_6000, _G7E_SIZES, "ml.g7e"),
    **_family(RTX_PRO_4500, _G7_SIZES, "ml.g7"),
    **_family(A10G, _G_SIZES, "ml.g5"),
    **_family(L4, _G_SIZES, "ml.g6"),
    **_family(L4, {"4xlarge": 1, "8xlarge": 1}, "ml.gr6"),
    **_family(L40S, _G_SIZES, "ml.g6e"),
    **_family(TRAINIUM, {"2xlarge": 1, "32xlarge": 16}, "ml.trn1"),
    **_family(TRAINIUM, {"32xlarge": 16}, "ml.trn1n"),
    **_family(TRAINIUM2, {"3xlarge": 1, "48xlarge": 16}, "ml.trn2"),
    **_family(TRAINIUM2, {"48xlarge": 16}, "ml.trn2u"),  # a Trn2 UltraServer node (HyperPod): as trn2.48xlarge
    **_family(V100, {"2xlarge": 1, "8xlarge": 4, "16xlarge": 8}, "ml.p3"),
    **_family(V100, {"24xlarge": 8}, "ml.p3dn"),
    **_family(K80, {"xlarge": 1, "8xlarge": 8, "16xlarge": 16}, "ml.p2"),
    **_family(
        T4, {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1, "12xlarge": 4, "metal": 8}, "ml.g4dn"
    ),
}

# Unknown instance type: the largest instance we know (chips x highest dense peak). Deliberately high, never zero.
UNKNOWN_INSTANCE = max(INSTANCE_CATALOG.values(), key=lambda spec: spec.peak_flops_per_s)


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
        accelerator, chips = UNKNOWN_INSTANCE.accelerator, UNKNOWN_INSTANCE.chips
        warnings = (
            f"instance type {instance_type!r} is not in the accelerator catalog; the ceiling assumes the largest "
            f"known instance, {chips} x {accelerator.name} at {accelerator.max_dense_flops_per_s / TERA:.0f} TFLOP/s "
            "(conservative)",
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
