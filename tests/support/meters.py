"""A meter for tests: output in a temporary folder, no CloudWatch, no signal handler, no stdout unless asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def quiet_meter(tmp_path: Path, model: Any = None, **options: Any) -> Any:
    from flopsmeter.training.environment import read_job_environment
    from flopsmeter.training.meter import FlopsMeter

    env = read_job_environment({}, output_dir=tmp_path, resource_config_path=str(tmp_path / "none.json"))
    options.setdefault("stdout", False)
    options.setdefault("cloudwatch", False)
    options.setdefault("emit_every_s", 3600)
    return FlopsMeter(model, environment=env, handle_signals=False, **options)


def ground_truth(fn: Any) -> float:
    """FLOPs ``fn()`` executes, as FlopCounterMode counts them with the meter's extra formulas."""
    from flopsmeter.training.flop_formulas import flop_counter

    with flop_counter() as counter:
        fn()
    return float(counter.get_total_flops())
