"""Which profile counts the model: taken when metering starts (the closed form, cross-checked on meta, or what a
caller gave; there a failure leaves the job unmetered instead of raising), and taken again at ``train()`` when the
trainer changed what decides it (checkpointing, input gradients, adapters) since."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flopsmeter.domain.methods import FineTuning
from flopsmeter.domain.shape import ModelShape
from flopsmeter.training.meta import profile_model
from flopsmeter.training.model import ModelProfile, profile_from_shape, signature


class Profiler:
    def __init__(self, model: Any, *, profile: ModelProfile | None, shape: ModelShape | None,
                 tuning: FineTuning | None, meta_check: bool, hook_ids: Callable[[], set[int]]) -> None:  # fmt: skip
        self.model = model
        self.profile = profile
        self._shape = shape
        self._tuning = tuning
        self._meta_check = meta_check
        self._hook_ids = hook_ids  # the meter's own hooks: the meta copy must not keep them
        self._signature: tuple[Any, ...] | None = None  # what the profile was taken from (``model.signature``)

    def get(self) -> ModelProfile:
        """The profile, taken now if it was not yet (raises what profiling raises)."""
        if self.profile is None:
            if self._shape is not None:
                self.profile = profile_from_shape(self._shape, self._tuning)
            elif self.model is None:
                raise ValueError("FlopsMeter needs a model, a ModelShape or a ModelProfile")
            else:
                self._signature = signature(self.model)
                self.profile = self.of(self.model, self._tuning)
        return self.profile

    def of(self, model: Any, tuning: FineTuning | None) -> ModelProfile:
        """A profile of ``model`` (the policy, or a frozen model beside it)."""
        return profile_model(model, tuning=tuning, meta=self._meta_check, hook_ids=self._hook_ids())

    def changed(self) -> bool:
        """The model changed what decides its profile since it was taken."""
        taken = self._signature is not None and self.profile is not None
        return taken and signature(self.model) != self._signature

    def retake(self) -> ModelProfile:
        """Profile the model again (raises what profiling raises; the old profile is kept then)."""
        old, self.profile = self.profile, None
        try:
            return self.get()
        except Exception:
            self.profile = old
            raise
