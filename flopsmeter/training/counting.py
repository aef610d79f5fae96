"""Counting one rank's work between synchronisation points: passes through the hooks, steps, measured windows.

``Counting`` owns the token counter, the hooks on the models that run (``hooks.py``), the pass categories
(``passes.py``) and measured mode (``probe.py``). The closed form counts every pass; a measured window sets
``FlopCounterMode``'s figure next to the closed form's for the same work, and:

* what it measured beyond the closed form is counted (category ``excess``, under update), so a measured step is
  never below what ran;
* a step that is not measured is scaled by the largest ratio measured (never below 1), so the figure stays the
  larger of measured and closed form;
* a ratio outside ``probe.TOLERANCE`` is a warning with both figures (stdout and ``flops_meter.json``);
* a step whose work the hooks did not see at all (counted nothing while the measurement found work) makes the
  totals incomplete: scaling nothing gives nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flopsmeter.training.hooks import PassHooks, auxiliary_category, policy_category
from flopsmeter.training.model import ModelProfile
from flopsmeter.training.params import unwrap
from flopsmeter.training.passes import RECOMPUTE, UPDATE_ADJUST, PassCounter, PassShape
from flopsmeter.training.probe import FIRST_STEPS, Mark, Probe, Window
from flopsmeter.training.tokens import NOT_CLOSED_FORM, TokenCounter
from flopsmeter.training.towers import find_parts

EXCESS = "excess"
TRAIN = "train"
MAX_RATIO_NOTICES = 3  # out-of-tolerance windows announced on stdout (all of them are in the file)

Notify = Callable[[str, str], None]  # (level, text): a human notice on stdout and in the warnings
Incomplete = Callable[[str, int], None]  # (reason, missing steps)


def _unseen_reason(window: Window) -> str:
    return (f"a measured window ({window.reason}, step {window.step + 1}) ran {window.measured_flops:.3e} FLOPs that "
            "no hooked pass accounts for: the modules that ran are not the ones the meter sees, so steps that are "
            "not measured are estimated")  # fmt: skip


class Counting:
    def __init__(self, profile: Callable[[], ModelProfile], *, measure_steps: int, calibrate: bool, strict: bool,
                 on_error: Callable[[Exception], None], notify: Notify, incomplete: Incomplete) -> None:  # fmt: skip
        self.profile = profile
        self.counter = TokenCounter()
        self.passes = PassCounter(self.counter, on_error, strict=strict)
        self.hooks = PassHooks(self.passes, self)
        self.probe = Probe(measure_steps)
        self.calibrate = calibrate
        self.notify = notify
        self.incomplete = incomplete
        self.steps_done = 0
        self.policy: Any = None
        self.auxiliary: dict[str, str] = {}  # model class and role of each frozen model whose forwards are counted
        self._blind = False  # a window found work the hooks did not see at all
        self._notices = 0
        self._step_window = False

    # ---- hooks ---------------------------------------------------------------------------------------------
    def attach(self, model: Any) -> None:
        self.hooks.attach(model, self.profile, policy_category)
        tower = self.profile().tower
        parts = None if tower is None else find_parts(unwrap(model))
        if tower is not None and parts is not None:
            self.hooks.attach_tower(parts.tower, tower, policy_category)
        self.policy = model

    def attach_auxiliary(self, model: Any, role: str, profile: ModelProfile) -> None:
        self.hooks.attach(model, lambda: profile, auxiliary_category(role, self._policy_training))
        self.auxiliary[f"{role}:{type(model).__name__}:{len(self.auxiliary)}"] = profile.source

    def _policy_training(self) -> bool:
        return self.policy is None or bool(self.policy.training)

    def detach(self) -> None:
        self.hooks.detach()

    def pass_started(self, category: str, shape: PassShape) -> None:
        """A counted pass: open a window for the first steps, or for a shape not measured yet."""
        key = (category, shape.bucket)
        new = self.probe.new_shape(key)
        if self.probe.active:
            return
        if self.probe.first_steps_left(self.steps_done):
            self._open(FIRST_STEPS)
        elif new:
            self._open(f"new shape: {category}, attention span up to {2**shape.bucket - 1}")

    # ---- steps ---------------------------------------------------------------------------------------------
    def figure(self) -> Mark:
        """This rank's unsynced closed-form figure (counted + recompute, nothing measured in it) and its recompute."""
        profile, counter = self.profile(), self.counter
        recompute = counter.extra[RECOMPUTE] + profile.update_recompute(counter.tokens, counter.positions)
        counted = profile.training.flops(counter.tokens, counter.positions)
        counted += sum(v for k, v in counter.extra.items() if k not in NOT_CLOSED_FORM)
        return Mark(counted + recompute, recompute)

    def _step_figure(self) -> float:
        """The closed form's figure (counted + recompute) of the optimizer step in progress."""
        profile = self.profile()
        tokens, positions, extra = self.counter.step_counts()
        closed = sum(v for k, v in extra.items() if k != EXCESS)
        return profile.training.flops(tokens, positions) + profile.update_recompute(tokens, positions) + closed

    def _open(self, reason: str) -> None:
        if self.probe.open(reason, self.steps_done, self.figure()):
            self._step_window = True

    def begin_step(self) -> None:
        """Start of an optimizer step: the first steps are measured from here."""
        if self.probe.first_steps_left(self.steps_done):
            self._open(FIRST_STEPS)

    def end_measure(self) -> None:
        """Stop measuring (before the optimizer step); the step's end settles the window."""
        self.probe.stop()

    def settle(self) -> None:
        """Pair a stopped window with the closed form of the same work: count what it found beyond it."""
        window = self.probe.settle(self.figure(), TRAIN)
        if window is None:
            return
        if self.calibrate and window.excess_flops:
            self.counter.add(EXCESS, window.excess_flops)
        if window.outside:
            self.announce(window)
        if window.measured_flops and window.closed_form_flops - window.recompute_flops <= 0 and not self._blind:
            self._blind = True
            self.incomplete(_unseen_reason(window), 0)

    def announce(self, window: Window) -> None:
        counted = "the larger figure is counted" if self.calibrate else "calibrate=False: the closed form is counted"
        text = (f"measured {window.measured_flops:.4e} FLOPs where the closed form counts "
                f"{window.closed_form_flops:.4e} (ratio {window.ratio:.3f}, outside {0.97}-{1.03}) in a measured "
                f"window ({window.reason}, step {window.step + 1}): {counted}")  # fmt: skip
        self._notices += 1
        self.notify("WARNING" if self._notices <= MAX_RATIO_NOTICES else "", text)

    def end_step(self) -> None:
        """End of an optimizer step: an unmeasured step takes the largest ratio measured; the step is closed."""
        self.settle()
        if not self._step_window:
            figure = self._step_figure()
            scale = self.probe.scale(TRAIN)
            if self.calibrate and scale > 1 and figure > 0:
                self.counter.add(EXCESS, (scale - 1.0) * figure)
            if self._blind and figure <= 0:
                self.incomplete("steps the hooks did not see were not measured either", 1)
        self._step_window = False
        self.counter.end_step(self.profile().training.flops)
        self.steps_done += 1

    def observe(self, batch: Any) -> int:
        """Count one micro-batch given by the caller (plain loops without ``attach``)."""
        tokens = self.counter.observe_batch(batch)
        ids = batch.get("input_ids") if hasattr(batch, "get") else batch
        shape = getattr(ids, "shape", None)
        if tokens and shape is not None and len(shape) >= 1:
            rows = tokens // max(1, int(shape[-1]))
            extra = self.profile().pass_extra(rows, backward=True)
            if extra:
                self.counter.add(UPDATE_ADJUST, extra)
        return tokens

    def disagreement(self) -> tuple[float, float]:
        """For the emitters: (measured, closed form) over the windows when one fell outside the tolerance, else 0s."""
        probe = self.probe
        if not probe.outside:
            return 0.0, 0.0
        return probe.measured_flops, probe.closed_form_flops

    def as_dict(self) -> dict[str, Any]:
        return {**self.probe.as_dict(), "counted_beyond_closed_form": self.calibrate}
