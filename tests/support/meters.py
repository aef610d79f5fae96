"""A meter for tests: output in a temporary folder, no CloudWatch, no signal handler, no stdout unless asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# "Exact", relative: transformers 4.x computes the rotary angles as an outer-product matmul (head_dim FLOPs per token,
# about 1e-5 of a tiny model's step) that the closed form leaves out (5.x computes them elementwise); the measured
# steps count it there. Everything else the tests compare is equal to the last FLOP.
EXACT = 1e-4


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
