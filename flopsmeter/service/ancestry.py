"""A record's ancestors as graph nodes (``flopsmeter.domain.lineage_graph``), and back; a job's current assessment.

A record written since issue 23 lists its ancestors (``lineage.ancestors``); an older one gives its ancestors as one
``not_itemised`` figure. A job re-assessed after a late parent has addenda beside its original record; the current
assessment is the addendum with the largest cumulative figure (each addendum includes what earlier ones counted).
"""

from __future__ import annotations

from flopsmeter.audit.keys import addenda_prefix, original_of
from flopsmeter.audit.record import AncestorLink, AuditRecord
from flopsmeter.domain.lineage_graph import Ancestor, AncestorBasis, Ancestry, ParentGraph, node_id, not_itemised
from flopsmeter.errors import PermanentStoreError
from flopsmeter.ports import RecordStore


def record_node(record: AuditRecord, record_key: str | None) -> Ancestor:
    """The job of ``record`` as a node: its own compute."""
    job = record.job
    return Ancestor(node_id(job.arn, job.name), record.lineage.own_flops, AncestorBasis.RECORD, job.name, record_key)


def recorded_ancestors(record: AuditRecord) -> tuple[Ancestor, ...]:
    """The record's ancestors: as listed, or (a record before issue 23) one ``not_itemised`` figure."""
    listed = record.lineage.ancestors
    if listed is None:
        return not_itemised(record_node(record, None), record.lineage.cumulative_flops)
    return tuple(Ancestor(a.id, a.flops, AncestorBasis(a.basis), a.job, a.record_key) for a in listed)


def parent_graph(record: AuditRecord, record_key: str | None) -> ParentGraph:
    return ParentGraph(record_node(record, record_key), recorded_ancestors(record))


def ancestor_links(ancestry: Ancestry | tuple[Ancestor, ...]) -> list[AncestorLink]:
    nodes = ancestry.ancestors if isinstance(ancestry, Ancestry) else ancestry
    return [
        AncestorLink(id=a.node_id, job=a.job, record_key=a.record_key, flops=a.flops, basis=a.basis.value)
        for a in nodes
    ]


def addenda(store: RecordStore, record_key: str) -> list[tuple[str, AuditRecord]]:
    """The addenda of the record at ``record_key`` (unreadable ones skipped: they never lower a figure)."""
    found = []
    for item in store.list_keys(addenda_prefix(original_of(record_key))):
        key = str(item.get("Key"))
        try:
            found.append((key, store.get_record(key)))
        except (PermanentStoreError, ValueError):
            continue
    return found


def current_record(store: RecordStore, record_key: str, original: AuditRecord) -> tuple[str, AuditRecord]:
    """The job's current assessment: its latest addendum by figure (then time), else the original record."""
    candidates = [(record_key, original), *addenda(store, record_key)]
    return max(candidates, key=lambda kr: (kr[1].lineage.cumulative_flops, kr[1].recorded_at))
