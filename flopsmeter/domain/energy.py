"""Energy per job: accelerators x board power x hours x power utilisation x PUE, with the method and its limits.

The documentation a provider keeps (AI Act Art. 53(1)(a), Annex XI 2(e)) asks for the "known or estimated energy
consumption of the model", which "may be based on information about computational resources used"
(regulation.md, Q3). A training job on SageMaker exposes its instances and their hours, not a power meter, so the
figure is an estimate by a stated method:

* ``board_power`` (instances known): chips x board power (W, per accelerator, from its data sheet; table below)
  x hours x power utilisation (default 1.0: every accelerator at its board power for the whole job, the method of
  Meta's Llama 3 / 3.1 model cards, "peak power capacity per GPU device ... adjusted for power usage
  efficiency") x PUE (default 1.15: AWS's reported global data-centre PUE for 2024). An upper estimate for the
  accelerators, which draw their board power only at full load.
* ``flops_at_utilisation`` (no instances: estimated jobs such as Amazon Bedrock customizations): the job's FLOPs
  turned into accelerator-hours on a reference accelerator at an assumed model-FLOPs utilisation (default 0.5,
  the utilisation of the Commission guideline's worked examples, Annex A.2/A.3), then as above. Uncertain by a
  factor of about two either way, and said so.
* ``unknown``: neither instances nor FLOPs: no figure, and the record says why. Never a silent zero.

Host CPUs, memory, storage and networking are not counted (accelerators only); every estimate says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from flopsmeter.domain import hardware
from flopsmeter.errors import FlopsMeterError

SECONDS_PER_HOUR = 3600.0
WATT_HOURS_PER_KWH = 1000.0
DEFAULT_PUE = 1.15
PUE_SOURCE = "AWS sustainability: global data-centre PUE 1.15 reported for 2024 (1.14 for 2025)"
DEFAULT_POWER_UTILISATION = 1.0  # fraction of board power drawn on average (1.0: board power throughout)
DEFAULT_MODEL_FLOPS_UTILISATION = 0.5  # FLOPs-based estimate: the guideline's worked examples use U = 50 %
REFERENCE_ACCELERATOR = hardware.H100  # FLOPs-based estimate: a current training GPU, at its BF16 dense peak
ACCELERATORS_ONLY = "accelerators only: host CPUs, memory, storage and networking are not counted"


class InvalidEnergyAssumption(FlopsMeterError, ValueError):
    """A PUE, utilisation, count or duration the energy estimate cannot use."""


class EnergyMethod(StrEnum):
    BOARD_POWER = "board_power"
    FLOPS_AT_UTILISATION = "flops_at_utilisation"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class BoardPower:
    """Maximum board power of one accelerator (what one chip in ``hardware.INSTANCE_CATALOG`` may draw)."""

    watts: float
    source: str


_TRAINIUM_BOUND = (
    "AWS does not publish Trainium board power; bounded at 1,000 W (AWS: chips above 1,000 W need liquid "
    "cooling, which Trn1/Trn2 servers do not use; DatacenterDynamics, 2024)"
)

# Keyed by ``hardware.Accelerator.name``; a test checks that every accelerator in the instance catalog has a row.
BOARD_POWER: dict[str, BoardPower] = {
    hardware.A100.name: BoardPower(400.0, "NVIDIA A100 Tensor Core GPU data sheet: 400 W max TDP (SXM)"),
    hardware.H100.name: BoardPower(700.0, "NVIDIA H100 Tensor Core GPU data sheet: up to 700 W (SXM, configurable)"),
    hardware.H200.name: BoardPower(700.0, "NVIDIA H200 data sheet: up to 700 W (SXM, configurable)"),
    hardware.B200.name: BoardPower(1000.0, "NVIDIA HGX B200: configurable up to 1,000 W per GPU"),
    hardware.B300.name: BoardPower(
        1400.0, "NVIDIA Blackwell Ultra (GB300): up to 1,400 W per GPU; HGX B300 is configured lower (kept as bound)"
    ),
    hardware.GB200.name: BoardPower(1200.0, "NVIDIA GB200 NVL72: Blackwell GPU configured to 1,200 W"),
    hardware.RTX_PRO_6000.name: BoardPower(600.0, "NVIDIA RTX PRO 6000 Blackwell Server Edition: 600 W max"),
    hardware.RTX_PRO_4500.name: BoardPower(165.0, "NVIDIA RTX PRO 4500 Blackwell Server Edition: 165 W TDP"),
    hardware.A10G.name: BoardPower(300.0, "NVIDIA A10G (AWS G5): 300 W power limit (the A10 data sheet says 150 W)"),
    hardware.L4.name: BoardPower(72.0, "NVIDIA L4 data sheet: 72 W max"),
    hardware.L40S.name: BoardPower(350.0, "NVIDIA L40S data sheet: 350 W max"),
    hardware.TRAINIUM.name: BoardPower(1000.0, _TRAINIUM_BOUND),
    hardware.TRAINIUM2.name: BoardPower(1000.0, _TRAINIUM_BOUND),
    hardware.V100.name: BoardPower(300.0, "NVIDIA V100 data sheet: 300 W (SXM2)"),
    hardware.T4.name: BoardPower(70.0, "NVIDIA T4 data sheet: 70 W"),
    hardware.K80.name: BoardPower(150.0, "NVIDIA Tesla K80: 300 W per board of two GK210 GPUs, 150 W each"),
}


@dataclass(frozen=True)
class EnergyAssumptions:
    """What the estimate assumes; each is configurable (service settings, CLI options)."""

    pue: float = DEFAULT_PUE
    power_utilisation: float = DEFAULT_POWER_UTILISATION
    model_flops_utilisation: float = DEFAULT_MODEL_FLOPS_UTILISATION
    pue_source: str = PUE_SOURCE

    def __post_init__(self) -> None:
        if not _finite(self.pue) or self.pue < 1.0:
            raise InvalidEnergyAssumption(f"PUE must be a finite number >= 1, got {self.pue!r}")
        for name in ("power_utilisation", "model_flops_utilisation"):
            value = getattr(self, name)
            if not _finite(value) or not 0 < value <= 1:
                raise InvalidEnergyAssumption(f"{name} must be in (0, 1], got {value!r}")


@dataclass(frozen=True)
class EnergyEstimate:
    """Energy of one job: ``kwh`` at the facility (PUE included) and ``accelerator_kwh`` (before PUE)."""

    method: EnergyMethod
    kwh: float | None
    accelerator_kwh: float | None
    accelerator: str | None
    accelerators: int | None
    board_power_w: float | None
    board_power_source: str | None
    accelerator_hours: float | None
    assumptions: EnergyAssumptions
    uncertainty: str
    notes: tuple[str, ...] = ()

    @property
    def known(self) -> bool:
        return self.kwh is not None


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def board_power_for(accelerator_name: str) -> BoardPower:
    """The board power of an accelerator of the catalog; an unknown name is an error (never a zero)."""
    try:
        return BOARD_POWER[accelerator_name]
    except KeyError:
        raise InvalidEnergyAssumption(f"no board power for accelerator {accelerator_name!r}") from None


def _kwh(chips: float, watts: float, hours: float, assumptions: EnergyAssumptions) -> tuple[float, float]:
    accelerator = chips * watts * assumptions.power_utilisation * hours / WATT_HOURS_PER_KWH
    return accelerator * assumptions.pue, accelerator


def energy_from_instances(
    instance_type: str, instance_count: int, seconds: float, assumptions: EnergyAssumptions | None = None
) -> EnergyEstimate:
    """Board-power method for a job whose instances are known (an unknown type: the largest known instance)."""
    chosen = assumptions or EnergyAssumptions()
    if isinstance(instance_count, bool) or not isinstance(instance_count, int) or instance_count < 1:
        raise InvalidEnergyAssumption(f"instance count must be an integer >= 1, got {instance_count!r}")
    if not _finite(seconds) or seconds < 0:
        raise InvalidEnergyAssumption(f"training seconds must be a finite number >= 0, got {seconds!r}")
    spec = hardware.lookup_instance(instance_type)
    notes = [ACCELERATORS_ONLY]
    if spec is None:
        spec = hardware.UNKNOWN_INSTANCE
        notes.append(
            f"instance type {instance_type!r} is not in the accelerator catalog: the largest known instance "
            f"({spec.chips} x {spec.accelerator.name}) is assumed"
        )
    power = board_power_for(spec.accelerator.name)
    chips = spec.chips * instance_count
    hours = chips * seconds / SECONDS_PER_HOUR
    kwh, accelerator_kwh = _kwh(chips, power.watts, seconds / SECONDS_PER_HOUR, chosen)
    uncertainty = (
        f"upper estimate for the accelerators: {chips} x {power.watts:.0f} W board power at "
        f"{chosen.power_utilisation:.0%} for the whole job (real draw is lower except at full load), x PUE "
        f"{chosen.pue:g} (fleet average, not this site's); {ACCELERATORS_ONLY}"
    )
    return EnergyEstimate(
        method=EnergyMethod.BOARD_POWER,
        kwh=kwh,
        accelerator_kwh=accelerator_kwh,
        accelerator=spec.accelerator.name,
        accelerators=chips,
        board_power_w=power.watts,
        board_power_source=power.source,
        accelerator_hours=hours,
        assumptions=chosen,
        uncertainty=uncertainty,
        notes=tuple(notes),
    )


def energy_from_flops(flops: float | None, assumptions: EnergyAssumptions | None = None) -> EnergyEstimate:
    """FLOPs-based method for a job without instances: accelerator-hours on the reference accelerator.

    ``None`` FLOPs (nothing known) gives an ``unknown`` estimate that says so; zero FLOPs is zero energy.
    """
    chosen = assumptions or EnergyAssumptions()
    if flops is None:
        return EnergyEstimate(
            method=EnergyMethod.UNKNOWN,
            kwh=None,
            accelerator_kwh=None,
            accelerator=None,
            accelerators=None,
            board_power_w=None,
            board_power_source=None,
            accelerator_hours=None,
            assumptions=chosen,
            uncertainty="unknown: neither the job's instances nor its FLOPs are known",
            notes=("energy unknown: no instances and no FLOP figure; declare the job's hardware and hours",),
        )
    if not _finite(flops) or flops < 0:
        raise InvalidEnergyAssumption(f"FLOPs must be a finite number >= 0, got {flops!r}")
    reference = REFERENCE_ACCELERATOR
    power = board_power_for(reference.name)
    peak = reference.bf16_dense_tflops * hardware.TERA
    hours = flops / (peak * chosen.model_flops_utilisation) / SECONDS_PER_HOUR
    kwh, accelerator_kwh = _kwh(1.0, power.watts, hours, chosen)
    return EnergyEstimate(
        method=EnergyMethod.FLOPS_AT_UTILISATION,
        kwh=kwh,
        accelerator_kwh=accelerator_kwh,
        accelerator=reference.name,
        accelerators=None,
        board_power_w=power.watts,
        board_power_source=power.source,
        accelerator_hours=hours,
        assumptions=chosen,
        uncertainty=(
            f"instances unknown: {flops:.2e} FLOPs / ({reference.name} BF16 dense peak x "
            f"{chosen.model_flops_utilisation:.0%} utilisation) = {hours:.3g} accelerator-hours at "
            f"{power.watts:.0f} W, x PUE {chosen.pue:g}; within about a factor of two (hardware and utilisation "
            f"are assumed); {ACCELERATORS_ONLY}"
        ),
        notes=("the job's instances are unknown: energy estimated from its FLOPs on a reference accelerator",
               ACCELERATORS_ONLY),
    )  # fmt: skip


def lineage_kwh(parent_lineage_kwh: float | None, own: EnergyEstimate, *, has_parent: bool) -> float | None:
    """Energy of the modification so far (this job and its ancestors); unknown if any part is unknown."""
    if own.kwh is None or (has_parent and parent_lineage_kwh is None):
        return None
    return own.kwh + (parent_lineage_kwh or 0.0)


def two_significant(value: float) -> str:
    """``value`` rounded to two significant figures, written plainly (``1,200``, ``35``, ``0.012``)."""
    if not _finite(value):
        raise InvalidEnergyAssumption(f"not a finite number: {value!r}")
    rounded = float(f"{value:.2g}")
    return f"{rounded:,.0f}" if abs(rounded) >= 100 else f"{rounded:.2g}"


def format_kwh(value: float | None) -> str:
    """Energy to two significant figures (``1,200 kWh``), or ``unknown``."""
    return "unknown" if value is None else f"{two_significant(value)} kWh"
