"""Lineage as a graph (pure): a job's ancestors, each counted once, whatever the shape of the lineage.

A job may start from several parents (a merge of two fine-tunes, a declared parent and an inferred one), and two
parents may share an ancestor (a diamond: two fine-tunes of one SFT, merged). Summing the parents' cumulative
figures counts a shared ancestor twice; dropping a parent undercounts. So every record carries its ancestors as a
set: one node per ancestor with the compute that node alone adds (``flops``), and a child's ancestry is the union
of its parents' ancestries and the parents themselves, each node once (at its largest figure when two paths
disagree, e.g. a hardware ceiling on one path and the record on the other). The cumulative figure is the job's own
compute plus the sum over that union.

A node is one of:

- ``record``: a job whose audit record was read; ``flops`` is its own compute (``lineage.own_flops``);
- ``ceiling``: a job without a record; its hardware ceiling stands in for its own compute;
- ``declared``: the part of a job's declared parent FLOPs that stands in for parents that could not be read;
- ``not_itemised``: the ancestors of a record written before lineage graphs (no ``lineage.ancestors``), as one
  figure (cumulative minus own). Two such records that share an ancestor count it twice: over, never under.

A cycle (the job among its own ancestors: two jobs that declare each other, a late parent that names its child) is
refused: the job's own compute is counted once, as its own, never again through an ancestor, and the record says
which parent closed the cycle.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum


class AncestorBasis(StrEnum):
    RECORD = "record"
    CEILING = "ceiling"
    DECLARED = "declared"
    NOT_ITEMISED = "not_itemised"


@dataclass(frozen=True)
class Ancestor:
    """One node of a lineage: who (``node_id``: the job's ARN, else its name; a stand-in's id says what it stands
    in for), and the compute this node alone adds."""

    node_id: str
    flops: float
    basis: AncestorBasis = AncestorBasis.RECORD
    job: str | None = None
    record_key: str | None = None


@dataclass(frozen=True)
class ParentGraph:
    """A counted parent: its own node and its recorded ancestors."""

    node: Ancestor
    ancestors: tuple[Ancestor, ...] = ()


@dataclass(frozen=True)
class Ancestry:
    """The union: every ancestor once (oldest first along each parent), their compute, and the cycles refused."""

    ancestors: tuple[Ancestor, ...]
    cycles: tuple[str, ...] = ()

    @property
    def flops(self) -> float:
        return sum(a.flops for a in self.ancestors)

    @property
    def jobs(self) -> list[str]:
        """The ancestor jobs by name (stand-ins left out), in the union's order."""
        return list(dict.fromkeys(a.job for a in self.ancestors if a.job and a.basis is not AncestorBasis.DECLARED))

    def digest(self) -> str:
        """A short digest of the set (ids and figures): the same union always gives the same digest."""
        items = sorted(f"{a.node_id}={a.flops!r}" for a in self.ancestors)
        return hashlib.sha256("\n".join(items).encode()).hexdigest()[:16]

    def covers(self, other: Ancestry) -> bool:
        """Does this union already count every node of ``other`` at least at its figure?"""
        mine = {a.node_id: a.flops for a in self.ancestors}
        return all(a.node_id in mine and mine[a.node_id] >= a.flops for a in other.ancestors)


def node_id(job_arn: str | None, job: str | None) -> str:
    """A job's identity in the graph: its ARN when known (names repeat across accounts and regions), else its name."""
    return job_arn or job or "?"


def not_itemised(parent: Ancestor, cumulative_flops: float) -> tuple[Ancestor, ...]:
    """The ancestors of a record written before lineage graphs, as one stand-in node (none when it had none)."""
    rest = cumulative_flops - parent.flops
    if rest <= 0:
        return ()
    return (Ancestor(f"not_itemised:{parent.node_id}", rest, AncestorBasis.NOT_ITEMISED, parent.job),)


def declared_stand_in(self_id: str, flops: float) -> Ancestor:
    """The part of a declaration that stands in for parents that could not be read."""
    return Ancestor(f"declared:{self_id}", flops, AncestorBasis.DECLARED)


def merge_ancestry(self_id: str, parents: Sequence[ParentGraph]) -> Ancestry:
    """The union of the parents' ancestries and the parents, each node once; the job itself refused (a cycle)."""
    return union(self_id, (((*p.ancestors, p.node), p.node.job or p.node.node_id) for p in parents))


def union(self_id: str, sets: Iterable[tuple[Sequence[Ancestor], str]]) -> Ancestry:
    """Several ancestor sets (each with the name of what it came through) as one: each node once, at its largest
    figure; a node that is the job itself is refused with the name of the set that brought it (a cycle)."""
    merged: dict[str, Ancestor] = {}
    cycles: list[str] = []
    for nodes, via in sets:
        for node in nodes:
            if node.node_id == self_id:
                cycles.append(cycle_warning(self_id, via))
                continue
            known = merged.get(node.node_id)
            if known is None or node.flops > known.flops:
                merged[node.node_id] = node
    return Ancestry(tuple(merged.values()), tuple(dict.fromkeys(cycles)))


def cycle_warning(self_id: str, via: str) -> str:
    job = self_id.rsplit("/", 1)[-1]
    return (
        f"lineage cycle refused: {job} is among the ancestors of its parent {via} (the two name each other); "
        f"{job}'s compute is counted once, as its own, and every other ancestor once"
    )
