"""Token counting without a host synchronisation per micro-step.

Tokens computed and token positions (tokens x sequence length, for the attention term) come from tensor
*shapes*, which the host already knows. Non-padding tokens need the attention mask's values: they are summed
into a device tensor and read back only when the meter synchronises (every emission interval).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("flopsmeter.training")


@dataclass(frozen=True)
class TokenDelta:
    """What one rank counted since the last synchronisation."""

    tokens: int
    positions: int  # sum over tokens of the attention span (the padded sequence length)
    non_padding_host: int  # non-padding tokens known on the host (batches without an attention mask)
    non_padding_device: Any  # a 0-d int64 tensor on the device, or None
    micro_steps: int
    max_step_flops: float  # the largest single optimizer step's FLOPs on this rank


class TokenCounter:
    def __init__(self) -> None:
        self._mask_warned = False
        self.reset()

    def reset(self) -> None:
        self.tokens = 0
        self.positions = 0
        self.non_padding_host = 0
        self.micro_steps = 0
        self.max_step_flops = 0.0
        self._device_sum: Any = None
        self._step_tokens = 0
        self._step_positions = 0

    def observe(self, input_ids: Any = None, attention_mask: Any = None, inputs_embeds: Any = None) -> int:
        """Count one micro-batch; returns the tokens it had. Only shapes are read on the host."""
        source = input_ids if input_ids is not None else inputs_embeds
        if source is None:
            return 0
        shape = tuple(source.shape)
        if input_ids is None:  # inputs_embeds: (batch, seq, hidden)
            shape = shape[:-1]
        if not shape:
            return 0
        seq_len = int(shape[-1])
        batch = 1
        for dim in shape[:-1]:
            batch *= int(dim)
        tokens = batch * seq_len
        self.tokens += tokens
        self.positions += tokens * seq_len
        self._step_tokens += tokens
        self._step_positions += tokens * seq_len
        self.micro_steps += 1
        if attention_mask is not None and tuple(attention_mask.shape) == shape:
            self._add_device(attention_mask)
        else:
            if attention_mask is not None and not self._mask_warned:
                self._mask_warned = True
                logger.warning("attention mask shape differs from the input's; non-padding tokens = all tokens")
            self.non_padding_host += tokens
        return tokens

    def observe_batch(self, batch: Any) -> int:
        """Count a batch as a mapping (``input_ids``, ``attention_mask``) or a bare ``input_ids`` tensor."""
        if isinstance(batch, Mapping):
            return self.observe(batch.get("input_ids"), batch.get("attention_mask"), batch.get("inputs_embeds"))
        if hasattr(batch, "shape"):
            return self.observe(batch)
        return 0

    def _add_device(self, mask: Any) -> None:
        import torch

        count = torch.count_nonzero(mask)
        if self._device_sum is None:
            self._device_sum = torch.zeros((), dtype=torch.int64, device=count.device)
        if count.device != self._device_sum.device:
            count = count.to(self._device_sum.device, non_blocking=True)
        self._device_sum.add_(count)

    def end_step(self, step_flops: Callable[[int, int], float]) -> None:
        """Close an optimizer step: remember the largest step's FLOPs (for the guard's projection)."""
        if self._step_tokens:
            self.max_step_flops = max(self.max_step_flops, step_flops(self._step_tokens, self._step_positions))
        self._step_tokens = 0
        self._step_positions = 0

    def take(self) -> TokenDelta:
        """Hand over the counts since the last call and start again (the device tensor is not read here)."""
        delta = TokenDelta(
            self.tokens, self.positions, self.non_padding_host, self._device_sum, self.micro_steps, self.max_step_flops
        )
        pending_tokens, pending_positions = self._step_tokens, self._step_positions
        self.reset()
        self._step_tokens, self._step_positions = pending_tokens, pending_positions
        return delta


def training_forward_hook(
    counter: TokenCounter, on_error: Callable[[Exception], None], *, strict: bool
) -> Callable[[Any, tuple[Any, ...], dict[str, Any]], None]:
    """A forward pre-hook (``with_kwargs=True``) that counts every training forward: eval and no-grad forwards are
    skipped. A failure to read the inputs goes to ``on_error`` (the hook runs inside the user's forward and must not
    break it), or is raised with ``strict``."""
    import torch

    def hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not module.training or not torch.is_grad_enabled():
            return
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        try:
            counter.observe(input_ids, kwargs.get("attention_mask"), kwargs.get("inputs_embeds"))
        except Exception as err:
            if strict:
                raise
            on_error(err)

    return hook
