"""The domain's errors: a caller's input the formulas cannot use. They belong to the package's one family
(``flopsmeter.errors``, standard library only) and are neither transient nor permanent: retrying with the same
input gives the same answer, and the caller decides what a bad input means where it is."""

from flopsmeter.errors import FlopsMeterError


class InvalidFlops(FlopsMeterError, ValueError):
    """A FLOP count that is not a finite, non-negative number."""


class UnknownPolicy(FlopsMeterError, KeyError):
    """A threshold policy id that is not in the registry."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want a plain sentence
        return str(self.args[0]) if self.args else "unknown policy"


class InvalidModelSpec(FlopsMeterError, ValueError):
    """A model configuration the FLOPs formulas cannot use."""


class InvalidFineTuning(FlopsMeterError, ValueError):
    """A fine-tuning description (method, LoRA rank or targets, trainable layers) the formulas cannot use."""


class InvalidMoment(FlopsMeterError, ValueError):
    """A moment without a time zone (it could be read in any zone: the due date would be ambiguous)."""
