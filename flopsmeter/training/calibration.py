"""Measured mode: ``FlopCounterMode`` over the first optimizer steps, next to the formula's figure.

The counter has formulas for what torch's registry misses (``flop_formulas.py``: in-place addmm, grouped-GEMM
experts, SDPA on CPU), so it sees the fused LM head, MoE kernels and fused attention. The measured figure covers
every pass of the step (reference, generation, reward inference, recompute), so it is compared with the meter's
figure for the same passes, recompute included.

The ratio measured / formula is recorded in ``flops_meter.json``; with ``calibrate=True`` the totals are scaled by
it when it is above 1 (calibration only ever raises the figure).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from flopsmeter.training.flop_formulas import flop_counter


@dataclass(frozen=True)
class Measurement:
    """FlopCounterMode over the first step(s), next to the formula's figure for the same tokens."""

    steps: int
    tokens: int
    measured_flops: float
    formula_flops: float

    @property
    def ratio(self) -> float:
        return self.measured_flops / self.formula_flops if self.formula_flops else math.nan

    def as_dict(self) -> dict[str, Any]:
        ratio = self.ratio
        return {
            "steps": self.steps,
            "tokens": self.tokens,
            "measured_flops": self.measured_flops,
            "formula_flops": self.formula_flops,
            "measured_to_formula": ratio if math.isfinite(ratio) else None,
            "measured_flops_per_token": self.measured_flops / self.tokens if self.tokens else None,
        }


class Calibration:
    """Enters ``FlopCounterMode`` at the start of each of the first ``steps`` optimizer steps and pairs what it
    counted with the tokens the step counted (known only once the step ends)."""

    def __init__(self, steps: int, *, calibrate: bool) -> None:
        self.steps = max(0, int(steps))
        self.calibrate = calibrate
        self.scale = 1.0
        self.measurement: Measurement | None = None
        self._mode: Any = None
        self._mark: tuple[int, float] = (0, 0.0)
        self._pending: float | None = None
        self._done = Measurement(0, 0, 0.0, 0.0)

    @property
    def pending(self) -> bool:
        """A measured step waits for ``attribute``."""
        return self._pending is not None

    def begin(self, tokens: int, figure: float) -> None:
        """Start of an optimizer step (``tokens`` / ``figure``: the meter's running local count and FLOPs)."""
        if self._done.steps >= self.steps or self._mode is not None:
            return
        self._mode = flop_counter()
        self._mode.__enter__()
        self._mark = (tokens, figure)

    def end(self) -> None:
        """Leave FlopCounterMode (before the optimizer step); ``attribute`` pairs it with the step's tokens."""
        mode, self._mode = self._mode, None
        if mode is None:
            return
        mode.__exit__(None, None, None)
        self._pending = (self._pending or 0.0) + float(mode.get_total_flops())

    def attribute(self, tokens: int, figure: float) -> None:
        """Close the measured step: ``figure`` is the meter's running FLOPs (counted + recompute) for the same work."""
        if self._pending is None:
            return
        done = self._done
        self._done = Measurement(
            done.steps + 1,
            done.tokens + tokens - self._mark[0],
            done.measured_flops + self._pending,
            done.formula_flops + figure - self._mark[1],
        )
        self._pending = None
        self.measurement = self._done
        if self.calibrate and self._done.ratio > 1:
            self.scale = self._done.ratio  # calibration only ever raises the figure
