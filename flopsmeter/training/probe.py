"""Measured by default: ``FlopCounterMode`` over the first optimizer steps and over the first pass of each new shape.

A *window* runs under ``FlopCounterMode`` with the formulas torch's registry lacks (``flop_formulas.py``: in-place
addmm, grouped-GEMM experts, SDPA on CPU; the CUDA fused and variable-length attention kernels are in torch's
registry). It opens at the start of each of the first ``steps`` optimizer steps, and at the first pass of a shape
not measured yet (a category of pass with an attention span in a new power-of-two bucket: longer rows, generation,
a phase that starts scoring with another model), and closes before the optimizer step. Work before ``train()`` is
measured per pass. What the window measured is set next to the meter's closed-form figure for the same work
(counted + recompute): the caller counts the larger, and keeps the largest ratio to scale what it does not measure.

The cost is the host's: torch dispatches every operation of a measured step through Python. Windows are few (the
first steps, then one per new shape, at most ``MAX_SHAPE_WINDOWS``), so per step it is a small fraction of the
meter's already small cost (``bench/overhead.py`` reports it).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from flopsmeter.training.flop_formulas import flop_counter

logger = logging.getLogger("flopsmeter.training")

TOLERANCE = (0.97, 1.03)  # measured / closed form outside this is a warning with both figures
MAX_SHAPE_WINDOWS = 24  # windows opened by new shapes after the first steps (later new shapes use the largest ratio)
KEPT_WINDOWS = 12  # windows listed in flops_meter.json (all of them are counted)
FIRST_STEPS = "first steps"
BEFORE_TRAIN = "work before train()"


@dataclass(frozen=True)
class Mark:
    """The meter's closed-form figure so far (counted + recompute, unscaled) and its recompute part."""

    figure: float
    recompute: float


@dataclass(frozen=True)
class Window:
    """One measured window next to the closed form for the same work."""

    reason: str  # FIRST_STEPS, "new shape: ...", BEFORE_TRAIN
    step: int  # optimizer steps completed when it opened
    measured_flops: float
    closed_form_flops: float  # counted + recompute
    recompute_flops: float

    @property
    def ratio(self) -> float:
        if self.closed_form_flops:
            return self.measured_flops / self.closed_form_flops
        return math.inf if self.measured_flops else 1.0

    @property
    def outside(self) -> bool:
        return not TOLERANCE[0] <= self.ratio <= TOLERANCE[1]

    @property
    def excess_flops(self) -> float:
        """Work measured beyond the closed form (counted on top of it), never negative."""
        return max(0.0, self.measured_flops - self.closed_form_flops)

    def as_dict(self) -> dict[str, Any]:
        ratio = self.ratio
        return {
            "reason": self.reason,
            "step": self.step,
            "measured_flops": self.measured_flops,
            "closed_form_flops": self.closed_form_flops,
            "recompute_flops": self.recompute_flops,
            "measured_to_closed_form": ratio if math.isfinite(ratio) else None,
        }


class Probe:
    """Opens and closes windows; keeps what they found (``scale``: the largest ratio per phase, at least 1)."""

    def __init__(self, steps: int) -> None:
        self.first_steps = max(0, int(steps))
        self.enabled = self.first_steps > 0
        self.failed: str | None = None
        self.windows: list[Window] = []  # the first KEPT_WINDOWS
        self.count = 0
        self.shape_windows = 0
        self.shapes_left_out = 0  # new shapes seen after MAX_SHAPE_WINDOWS
        self.measured_flops = 0.0
        self.closed_form_flops = 0.0
        self.outside = 0  # windows whose ratio fell outside TOLERANCE
        self.scales: dict[str, float] = {}
        self._keys: set[Any] = set()
        self._mode: Any = None
        self._reason = ""
        self._step = 0
        self._mark = Mark(0.0, 0.0)
        self._measured: float | None = None  # a stopped window waiting for the closed form of its work

    @property
    def active(self) -> bool:
        """A window is open or waits to be settled (its work's closed form is known only once the step ends)."""
        return self._mode is not None or self._measured is not None

    def scale(self, phase: str) -> float:
        return self.scales.get(phase, 1.0)

    def first_steps_left(self, steps_done: int) -> bool:
        return self.enabled and steps_done < self.first_steps

    def new_shape(self, key: Any) -> bool:
        """A shape not measured yet (seen inside an open window counts as measured)."""
        if key in self._keys:
            return False
        self._keys.add(key)
        if self.active:
            return False
        if self.shape_windows >= MAX_SHAPE_WINDOWS:
            self.shapes_left_out += 1
            return False
        return self.enabled

    def open(self, reason: str, step: int, mark: Mark) -> bool:
        """Enter ``FlopCounterMode``; False (and measured mode off, with the reason) if it cannot be entered."""
        if self.active or not self.enabled:
            return False
        try:
            mode = flop_counter()
            mode.__enter__()
        except Exception as err:  # never the user's training: the closed form counts alone
            self.failed = f"{type(err).__name__}: {err}"
            self.enabled = False
            logger.warning("flops meter cannot measure (%s): the closed form counts alone", self.failed)
            return False
        self._mode, self._reason, self._step, self._mark = mode, reason, step, mark
        if reason not in (FIRST_STEPS, BEFORE_TRAIN):
            self.shape_windows += 1
        return True

    def stop(self) -> None:
        """Leave ``FlopCounterMode`` (before the optimizer step); ``settle`` pairs it with the closed form."""
        mode, self._mode = self._mode, None
        if mode is not None:
            mode.__exit__(None, None, None)
            self._measured = (self._measured or 0.0) + float(mode.get_total_flops())

    def settle(self, mark: Mark, phase: str) -> Window | None:
        """The stopped window, with the closed form for the same work (``mark`` less the opening's), or None."""
        self.stop()
        measured, self._measured = self._measured, None
        if measured is None:
            return None
        window = Window(self._reason, self._step, measured, mark.figure - self._mark.figure,
                        mark.recompute - self._mark.recompute)  # fmt: skip
        self.count += 1
        self.outside += int(window.outside)
        self.measured_flops += window.measured_flops
        self.closed_form_flops += window.closed_form_flops
        if len(self.windows) < KEPT_WINDOWS:
            self.windows.append(window)
        if window.closed_form_flops > 0 and window.ratio > self.scale(phase):
            self.scales[phase] = window.ratio
        return window

    def as_dict(self) -> dict[str, Any]:
        outside = [w.as_dict() for w in self.windows if w.outside]
        return {
            "enabled": self.enabled,
            "failed": self.failed,
            "windows": self.count,
            "measured_flops": self.measured_flops,
            "closed_form_flops": self.closed_form_flops,
            "measured_to_closed_form": self.measured_flops / self.closed_form_flops if self.closed_form_flops else None,
            "tolerance": list(TOLERANCE),
            "scales": dict(self.scales),
            "outside_tolerance": outside,
            "windows_outside_tolerance": self.outside,
            "shapes_not_measured": self.shapes_left_out,
            "first": [w.as_dict() for w in self.windows],
        }
