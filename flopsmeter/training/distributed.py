"""Summing the ranks' counts at an emission point: one all-reduce of a small float64 vector
(token counts, then FLOPs of the passes not counted from tokens).

Every rank calls ``reduce_deltas`` at the same optimizer step (the schedule is itself agreed through the
reduced vector), so the collective never deadlocks. Values are integers far below 2**53 per interval, so
float64 sums are exact. Without an initialised process group it is a local read of the device counter.
"""

from __future__ import annotations

from dataclasses import dataclass

from flopsmeter.training.tokens import EXTRA, TokenDelta


@dataclass(frozen=True)
class World:
    rank: int
    size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@dataclass(frozen=True)
class Reduced:
    tokens: int
    positions: int
    non_padding_tokens: int
    micro_steps: int
    max_step_flops: float  # sum over ranks of each rank's largest step: an upper bound of a global step
    proposal: float  # rank 0's proposed next interval in steps (others contribute 0)
    extra: tuple[float, ...] = (0.0,) * len(EXTRA)  # FLOPs per tokens.EXTRA category
    document_positions: int = 0

    def extra_flops(self, category: str) -> float:
        return self.extra[EXTRA.index(category)]


def _dist() -> object | None:
    try:
        import torch.distributed as dist
    except ImportError:
        return None
    if dist.is_available() and dist.is_initialized():
        return dist
    return None


def current_world() -> World:
    dist = _dist()
    if dist is None:
        return World(0, 1)
    return World(int(dist.get_rank()), int(dist.get_world_size()))  # type: ignore[attr-defined]


def local_estimate(delta: TokenDelta, world_size: int, proposal: float = 0.0) -> Reduced:
    """This rank's counts times ``world_size``: the sum when alone, an estimate where no collective is possible."""
    device_count = int(delta.non_padding_device.item()) if delta.non_padding_device is not None else 0
    documents = delta.document_positions_host
    if delta.document_positions_device is not None:
        documents += int(delta.document_positions_device.item())
    return Reduced(
        delta.tokens * world_size,
        delta.positions * world_size,
        (delta.non_padding_host + device_count) * world_size,
        delta.micro_steps * world_size,
        delta.max_step_flops * world_size,
        proposal,
        tuple(x * world_size for x in delta.extra),
        documents * world_size,
    )


def reduce_deltas(delta: TokenDelta, proposal: float) -> Reduced:
    import torch

    dist = _dist()
    if dist is None or dist.get_world_size() == 1:  # type: ignore[attr-defined]
        return local_estimate(delta, 1, proposal)
    backend = str(dist.get_backend())  # type: ignore[attr-defined]
    device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
    head = [delta.tokens, delta.positions, delta.non_padding_host, delta.micro_steps, delta.max_step_flops, proposal]
    values = torch.tensor([*head, delta.document_positions_host, *delta.extra], dtype=torch.float64, device=device)
    if delta.non_padding_device is not None:
        values[2] += delta.non_padding_device.to(device=device, dtype=torch.float64)
    if delta.document_positions_device is not None:
        values[6] += delta.document_positions_device.to(device=device, dtype=torch.float64)
    dist.all_reduce(values, op=dist.ReduceOp.SUM)  # type: ignore[attr-defined]
    tokens, positions, non_padding, micro, max_step, prop, documents, *extra = values.tolist()
    return Reduced(int(tokens), int(positions), int(non_padding), int(micro), float(max_step), float(prop),
                   tuple(extra), int(documents))  # fmt: skip
