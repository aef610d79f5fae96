"""Work before ``train()``: reference log-probs a trainer computes in its constructor (TRL DPO / KTO with
``precompute_ref_log_probs=True``, and any trainer with such a switch), counted under ``reference``.

* **Attached early** (the callback is built before the trainer, as ``callbacks=[...]`` does: it hears
  ``on_init_end``): from then until ``on_train_begin`` global forward hooks see every model call. The outermost
  call whose arguments say what it computes is the pass (the reference model, or the policy with its adapters
  disabled); the first calls (and the first of each new shape) are measured under ``FlopCounterMode`` and the
  larger figure counted, as in training.
* **Attached late** (``trainer.add_callback`` after construction): the trainer's own collator is run over the
  dataset in the order and batch size the precompute used, and the reference forward of every padded batch is
  counted from its shape (``estimate_precompute``), with a warning that says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from flopsmeter.training.counting import Counting
from flopsmeter.training.hooks import pass_modules
from flopsmeter.training.model import ModelProfile
from flopsmeter.training.passes import BACKBONE, REFERENCE, UPDATE, WHOLE, PassShape, read
from flopsmeter.training.probe import BEFORE_TRAIN, Mark

PHASE = "before_train"
FIRST_CALLS = 2  # calls measured before train() (then one per new shape)


@dataclass
class _Frame:
    module: Any
    records: list[tuple[Any, str, PassShape]] = field(default_factory=list)


def _kind(module: Any) -> str | None:
    """What a module's call runs when it is a model: with its head, or a backbone; None for any other module."""
    if not callable(getattr(module, "get_input_embeddings", None)) and not hasattr(module, "get_base_model"):
        return None
    get_head = getattr(module, "get_output_embeddings", None)
    head = get_head() if callable(get_head) else None
    return WHOLE if head is not None or hasattr(module, "get_base_model") else BACKBONE


class BeforeTrain:
    """Global forward hooks counting every model call until ``remove()`` (``on_train_begin``)."""

    def __init__(self, counting: Counting, profile_of: Callable[[Any], ModelProfile]) -> None:
        self.counting = counting
        self.profile_of = profile_of
        self.calls = 0  # counted model calls
        self.failures: list[str] = []
        self._stack: list[_Frame] = []
        self._handles: list[Any] = []
        self._measured = 0
        self._pending = False
        self._mark = Mark(0.0, 0.0)
        self._paused = False  # profiling a model runs its meta copy: not work of the job

    @property
    def saw_work(self) -> bool:
        return self.calls > 0

    def install(self) -> None:
        from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

        self._handles = [register_module_forward_pre_hook(self._pre),
                         register_module_forward_hook(self._post, with_kwargs=True, always_call=True)]  # fmt: skip

    def remove(self) -> bool:
        """Remove the hooks; False if they were removed already."""
        if not self._handles:
            return False
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._stack.clear()
        self.counting.probe.settle(self.counting.figure(), PHASE)
        return True

    def _pre(self, module: Any, args: tuple[Any, ...]) -> None:
        if self._paused:
            return
        if not self._stack:
            self._mark = self.counting.figure()
            probe = self.counting.probe
            if probe.enabled and (self._measured < FIRST_CALLS or self._pending):
                self._pending = not probe.open(BEFORE_TRAIN, 0, self._mark)
                self._measured += 1
        self._stack.append(_Frame(module))

    def _post(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        if self._paused or not self._stack:
            return
        frame = self._stack.pop()
        kind = _kind(module)
        shape = None if kind is None else read(kind, args, kwargs)
        records = [(module, kind, shape)] if kind is not None and shape is not None else frame.records
        if self._stack:
            self._stack[-1].records.extend(records)
            return
        self.counting.passes.guarded(lambda: self._count(records))

    def _count(self, records: list[tuple[Any, str, PassShape]]) -> None:
        import torch

        counting = self.counting
        for module, _, shape in records:
            category = UPDATE if torch.is_grad_enabled() else REFERENCE
            self._pending |= counting.probe.new_shape((PHASE, category, shape.bucket))
            profile = self._profile(module)
            if category == UPDATE:
                counting.passes.update(profile, shape, {}, _Ids(shape))
            else:
                counting.passes.forward_only(profile, shape, REFERENCE)
            self.calls += 1
        window = counting.probe.settle(counting.figure(), PHASE)
        if window is not None:
            counting.counter.add(REFERENCE, window.excess_flops if counting.calibrate else 0.0)
            if window.outside:
                counting.announce(window)
        elif counting.calibrate and counting.probe.scale(PHASE) > 1:
            closed = counting.figure().figure - self._mark.figure
            counting.counter.add(REFERENCE, (counting.probe.scale(PHASE) - 1.0) * closed)

    def _profile(self, module: Any) -> ModelProfile:
        self._paused = True
        try:
            return self.profile_of(module)
        finally:
            self._paused = False


@dataclass(frozen=True)
class _Ids:
    """Stands in for the token ids of a pass read from its shape (the counter reads shapes only)."""

    pass_shape: PassShape

    @property
    def shape(self) -> tuple[int, int]:
        return (self.pass_shape.rows, self.pass_shape.seq_len)


def owner_profiles(policy: Any, policy_profile: Callable[[], ModelProfile],
                   profile_model: Callable[[Any], ModelProfile]) -> Callable[[Any], ModelProfile]:  # fmt: skip
    """A module -> profile lookup: the policy's modules share its profile; any other model is profiled once."""
    from flopsmeter.training.params import unwrap

    policy_ids = {id(m) for m, _ in pass_modules(policy)} if policy is not None else set()
    cache: dict[int, ModelProfile] = {}

    def profile_of(module: Any) -> ModelProfile:
        if id(module) in policy_ids:
            return policy_profile()
        if id(module) not in cache:
            cache[id(module)] = profile_model(unwrap(module))
        return cache[id(module)]

    return profile_of


# ---- attached late: from the dataset's tokens -------------------------------------------------------------------
PRECOMPUTE_SWITCH = "precompute_ref_log_probs"
PRECOMPUTED_COLUMNS = ("ref_chosen_logps", "ref_logps", "reference_logps", "ref_log_probs")
ID_KEYS = ("input_ids", "KL_input_ids")  # what TRL's DPO / KTO collators feed the reference, per batch


def precomputed(trainer: Any) -> bool:
    """The trainer precomputed reference log-probs before ``train()`` (its switch is on and the columns exist)."""
    args = getattr(trainer, "args", None)
    dataset = getattr(trainer, "train_dataset", None)
    columns = set(getattr(dataset, "column_names", None) or ())
    return bool(getattr(args, PRECOMPUTE_SWITCH, False)) and bool(columns & set(PRECOMPUTED_COLUMNS))


def precompute_batches(trainer: Any) -> Iterator[dict[str, Any]]:
    """The padded batches the precompute fed the reference: the trainer's collator over its train dataset, in
    order, at the precompute batch size."""
    args, dataset = trainer.args, trainer.train_dataset
    size = int(getattr(args, "precompute_ref_batch_size", None) or args.per_device_train_batch_size)
    rows = [dataset[i] for i in range(len(dataset))]
    for start in range(0, len(rows), size):
        yield trainer.data_collator(rows[start : start + size])


def estimate_precompute(trainer: Any, profile: ModelProfile) -> tuple[float, int]:
    """(reference FLOPs, sequences) of the precompute, from the collated batches' shapes (TRL's fused LM head)."""
    from flopsmeter.training.passes import read_pass

    flops, sequences = 0.0, 0
    for batch in precompute_batches(trainer):
        for key in ID_KEYS:
            ids = batch.get(key)
            shape = None if ids is None else read_pass((), {"input_ids": ids, "fused_lm_head": True})
            if shape is not None:
                flops += profile.forward_flops(shape.tokens, shape.positions, shape.head_rows)
                flops += profile.pass_extra(shape.rows, backward=False)
                sequences += shape.rows
    return flops, sequences
