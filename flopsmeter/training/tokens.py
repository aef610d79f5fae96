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
    extra: tuple[float, ...] = (0.0,) * 6  # FLOPs per EXTRA category, converted when the pass was seen
    document_positions_host: int = 0  # sum over tokens of their document's length, rows without position_ids
    document_positions_device: Any = None  # the same for rows with position_ids (packed or not), on the device

    @property
    def pending(self) -> bool:
        return bool(self.tokens or any(self.extra))


# FLOPs counted per pass rather than from token sums. "excess": work measured beyond the closed form (probe.py),
# counted under update; "recompute" is recorded, never added.
EXTRA = ("reference", "generation", "reward_inference", "recompute", "update_adjust", "excess")
NOT_CLOSED_FORM = ("recompute", "excess")  # left out of the closed form's counted figure


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
        self.extra = dict.fromkeys(EXTRA, 0.0)
        self._step_extra = dict.fromkeys(EXTRA, 0.0)
        self.document_positions_host = 0
        self._document_device: Any = None

    def add(self, category: str, flops: float) -> None:
        """FLOPs of a pass that is not counted from update tokens (forward-only passes, recompute, corrections)."""
        self.extra[category] += flops
        self._step_extra[category] += flops

    def _observe_documents(self, position_ids: Any) -> None:
        """Rows with ``position_ids``: sum over tokens of their document's length, as sum(2 * position + 1) (a
        document of L tokens gives 1 + 3 + ... + 2L - 1 = L^2), on the device: no host read."""
        import torch

        value = (2 * position_ids.to(torch.int64) + 1).sum()
        if self._document_device is None:
            self._document_device = torch.zeros((), dtype=torch.int64, device=value.device)
        self._document_device.add_(value.to(self._document_device.device))

    def observe(
        self, input_ids: Any = None, attention_mask: Any = None, inputs_embeds: Any = None, position_ids: Any = None
    ) -> int:
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
        if position_ids is not None and tuple(position_ids.shape) == shape:
            self._observe_documents(position_ids)
        else:
            self.document_positions_host += tokens * seq_len
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
            return self.observe(
                batch.get("input_ids"),
                batch.get("attention_mask"),
                batch.get("inputs_embeds"),
                batch.get("position_ids"),
            )
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

    def step_counts(self) -> tuple[int, int, dict[str, float]]:
        """Tokens, token positions and FLOPs per EXTRA category of the optimizer step in progress."""
        return self._step_tokens, self._step_positions, dict(self._step_extra)

    def end_step(self, step_flops: Callable[[int, int], float]) -> None:
        """Close an optimizer step: remember the largest step's FLOPs (for the guard's projection)."""
        counted = sum(v for k, v in self._step_extra.items() if k != "recompute")
        if self._step_tokens or counted:
            flops = step_flops(self._step_tokens, self._step_positions) + counted
            self.max_step_flops = max(self.max_step_flops, flops)
        self._step_tokens = 0
        self._step_positions = 0
        self._step_extra = dict.fromkeys(EXTRA, 0.0)

    def take(self) -> TokenDelta:
        """Hand over the counts since the last call and start again (the device tensor is not read here)."""
        delta = TokenDelta(
            self.tokens,
            self.positions,
            self.non_padding_host,
            self._device_sum,
            self.micro_steps,
            self.max_step_flops,
            tuple(self.extra[c] for c in EXTRA),
            self.document_positions_host,
            self._document_device,
        )
        pending = self._step_tokens, self._step_positions, dict(self._step_extra)
        self.reset()
        self._step_tokens, self._step_positions, self._step_extra = pending
        return delta
