"""The meter's settings: one frozen dataclass shared by ``FlopsMeter`` and ``FlopsMeterCallback``.

    FlopsMeterCallback(stop_at="approaching")                       # keywords, as before
    FlopsMeterCallback(options=MeterOptions(stop_at="approaching", measure_steps=4))

Bad values raise ``ValueError`` when the options are built, so a typo fails before any training.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields, replace
from typing import IO, Any

from flopsmeter.domain.thresholds import DEFAULT_APPROACHING_FRACTION, DEFAULT_PRIMARY_POLICY, get_policy

STOP_AT_VALUES: tuple[str, ...] = ("approaching", "threshold")
DEFAULT_MEASURE_STEPS = 2


@dataclass(frozen=True)
class MeterOptions:
    """What the user chooses. Every field but a ``stdout`` stream is a plain value, so the Trainer can re-create
    the callback from ``trainer_state.json``."""

    emit_every_s: float = 60.0  # about how often totals are synced and emitted (0: every optimizer step)
    stop_at: str | None = None  # "threshold" / "approaching": the guard stops the run before it crosses
    policy: str = DEFAULT_PRIMARY_POLICY
    approaching_fraction: float = DEFAULT_APPROACHING_FRACTION
    pretrain_flops: str | float | None = None  # else PRETRAIN_FLOPS, else the catalog for base_model
    base_model: str | None = None  # else FLOPSMETER_BASE_MODEL
    prior_flops: str | float | None = None  # else FLOPSMETER_PRIOR_FLOPS
    output_dir: str | os.PathLike[str] | None = None  # where flops_meter.json goes (else FLOPSMETER_OUTPUT_DIR...)
    job_name: str | None = None  # else TRAINING_JOB_NAME (the CloudWatch dimension)
    cloudwatch: bool | None = None  # None: on when a job name and boto3 are there
    stdout: bool | IO[str] = True  # True: sys.stdout; a stream: there; False: no lines
    # FlopCounterMode over the first N optimizer steps, and over the first pass of each new shape (probe.py); 0: off
    measure_steps: int = DEFAULT_MEASURE_STEPS
    calibrate: bool = True  # count the larger of measured and closed form (False: record and warn only)
    handle_signals: bool = True  # SIGTERM writes the totals (the previous handler is chained)
    strict: bool = False  # raise instead of leaving the job unmetered
    meta_check: bool = True  # cross-check the closed form with the model's own forward + backward on meta

    def __post_init__(self) -> None:
        if self.emit_every_s < 0 or not math.isfinite(self.emit_every_s):
            raise ValueError(f"emit_every_s must be a finite number >= 0, got {self.emit_every_s!r}")
        get_policy(self.policy)  # an unknown policy id fails here, before any training
        if self.stop_at is not None and self.stop_at not in STOP_AT_VALUES:
            raise ValueError(f"stop_at must be one of {STOP_AT_VALUES} or None, got {self.stop_at!r}")
        if not 0 < self.approaching_fraction <= 1:
            raise ValueError(f"approaching fraction must be in (0, 1], got {self.approaching_fraction!r}")
        if self.measure_steps < 0:
            raise ValueError(f"measure_steps must be >= 0, got {self.measure_steps!r}")

    @classmethod
    def of(cls, options: MeterOptions | None, overrides: dict[str, Any]) -> MeterOptions:
        """``options`` (or the defaults) with keyword ``overrides``; an unknown keyword is a ``TypeError``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"unknown meter option(s) {unknown}; the options are {sorted(known)}")
        return replace(options or cls(), **overrides)

    def exported(self) -> dict[str, Any]:
        """Plain JSON values (a stream becomes ``True``, a path a string); ``MeterOptions(**exported())`` rebuilds."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}  # not asdict: it deep-copies a stream
        if not isinstance(self.stdout, bool):
            values["stdout"] = True
        if self.output_dir is not None:
            values["output_dir"] = os.fspath(self.output_dir)
        return values
