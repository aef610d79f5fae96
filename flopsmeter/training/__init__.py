"""The meter inside a training job: the Hugging Face callback, the plain-PyTorch meter, and their emitters.

``FlopsMeterCallback`` needs ``transformers``; it is imported on first use so that ``FlopsMeter`` works in
plain PyTorch environments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flopsmeter.training.meter import FlopsMeter, StepResult
from flopsmeter.training.model import ModelProfile, describe_model
from flopsmeter.training.options import MeterOptions
from flopsmeter.training.params import count_parameters

if TYPE_CHECKING:
    from flopsmeter.training.callback import FlopsMeterCallback

__all__ = [
    "FlopsMeter",
    "FlopsMeterCallback",
    "MeterOptions",
    "ModelProfile",
    "StepResult",
    "count_parameters",
    "describe_model",
]


def __getattr__(name: str) -> Any:
    if name == "FlopsMeterCallback":
        from flopsmeter.training.callback import FlopsMeterCallback

        return FlopsMeterCallback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
