"""The library's own errors. Callers tell them apart by type, never by message text."""


class FlopsMeterError(Exception):
    """Base class of every error this package raises on purpose."""


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
