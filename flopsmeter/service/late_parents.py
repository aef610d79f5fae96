"""A parent recorded after a child that read its artifacts: the child is re-assessed (issue 23).

A child classified while its parent's event was late (retrying, lost, in the dead-letter queue) found no index
entry for what it read, so it was recorded without that parent. Order of arrival must never lower a figure: when
the parent is recorded, the classifier looks up the jobs that read what the parent wrote (``index/v1/reads`` and
``reads-under``, written by every job before its own lineage lookup, so a child can never miss its parent unseen),
that started after the parent ended and whose current assessment does not count it yet. Each is re-assessed: an
addendum record beside the original (records are write-once and Object-Locked: never an overwrite) that names the
original, counts the parent and its ancestors once (``flopsmeter.domain.lineage_graph``), is classified again
(never lower than recorded: ``flopsmeter.domain.reassessment``) and is announced like a record (event, and the
alert when approaching or exceeding).

Two late parents of one child re-assessed at once each write the addendum of the union they see; each then looks
again and writes the union of all addenda when it is larger, so the last addendum counts both (addendum keys derive
from the ancestors counted, so the same union is written once).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from flopsmeter.audit.blocks import BlockInputs, policy_results, with_energy_and_obligations
from flopsmeter.audit.keys import addendum_key
from flopsmeter.audit.lineage_index import IndexEntry
from flopsmeter.audit.record import (
    RECORD_NAMESPACE,
    AddendumInfo,
    AuditRecord,
    Lineage,
    ParentLink,
    PolicyClassification,
)
from flopsmeter.domain.classification import classify
from flopsmeter.domain.lineage import (
    WHOLE_PREFIX_SOURCES,
    ArtifactRole,
    LineageStatus,
    ParentSource,
    apply_lineage_rule,
    declared_location,
    prefix_candidates,
)
from flopsmeter.domain.lineage_graph import Ancestry, node_id, union
from flopsmeter.domain.reassessment import never_lower
from flopsmeter.errors import ChildRecordPending, PermanentStoreError
from flopsmeter.service.ancestry import addenda, ancestor_links, parent_graph, recorded_ancestors
from flopsmeter.service.dependencies import Dependencies, ServiceConfig
from flopsmeter.service.facts import JobFacts
from flopsmeter.service.lineage_index import find_readers
from flopsmeter.service.notifications import announce, announced

MAX_LATE_CHILDREN = 64  # children re-assessed per parent record; more are logged as a warning, not re-assessed
SETTLE_ROUNDS = 3  # looks at a child's addenda after writing one (two late parents at once converge in two)


@dataclass(frozen=True)
class Late:
    """A late parent as a child sees it: its record, where it is, and how the child read it."""

    record: AuditRecord
    key: str
    link: ParentLink


def reassess_after(
    record: AuditRecord | None, key: str | None, facts: JobFacts, deps: Dependencies, config: ServiceConfig
) -> list[str]:
    """After a job's record is written (or found written: a retry resumes the re-assessment), re-assess its late
    children; a record that cannot be read is left alone (it was announced as unreadable)."""
    if key is None:
        return []
    if record is None:
        try:
            record = deps.store.get_record(key)
        except (PermanentStoreError, ValueError):
            return []
    return reassess_children(record, key, facts, deps, config)


def reassess_children(
    parent: AuditRecord, parent_key: str, facts: JobFacts, deps: Dependencies, config: ServiceConfig
) -> list[str]:
    """Re-assess every job that read what ``parent`` wrote after it ended; the addenda written (keys)."""
    try:
        readers = _readers(facts, deps)
    except PermanentStoreError as err:  # no listing: logged loudly, the records stay as they are
        deps.log.warning("late-parent readers could not be listed", extra={"job": facts.name, "error": str(err)})
        return []
    if len(readers) > MAX_LATE_CHILDREN:
        deps.log.warning("too many readers to re-assess at once", extra={"job": facts.name, "readers": len(readers)})
    written: list[str] = []
    for entry in list(readers.values())[:MAX_LATE_CHILDREN]:
        link = ParentLink(
            job=parent.job.name,
            job_arn=parent.job.arn,
            source=_source(entry),
            location=entry.location,
            record_key=parent_key,
            cumulative_flops=parent.lineage.cumulative_flops,
            status="resolved",
        )
        written += _reassess(entry, Late(parent, parent_key, link), deps, config)
    return written


def _source(entry: IndexEntry) -> str:
    return entry.role if entry.role in {s.value for s in ParentSource} else ParentSource.INPUT_CHANNEL.value


def _readers(facts: JobFacts, deps: Dependencies) -> dict[str, IndexEntry]:
    """The jobs that read a location the parent wrote, one under it, or (a whole-prefix input) one above it; each
    index prefix listed once."""
    found: dict[str, IndexEntry] = {}
    for (kind, location), sources in reader_lookups(facts).items():
        for entry in find_readers(deps.store, kind, location, since=facts.end_time, exclude_job=facts.name):
            if sources is None or entry.role in sources:
                found.setdefault(entry.record_key, entry)
    return found


Lookups = dict[tuple[str, str], frozenset[str] | None]  # (index kind, location) -> the read sources that count


def reader_lookups(facts: JobFacts) -> Lookups:
    lookups: Lookups = {}

    def add(kind: str, location: str, sources: frozenset[str] | None = None) -> None:
        known = lookups.get((kind, location), frozenset())
        lookups[(kind, location)] = None if sources is None or known is None else known | sources

    whole = frozenset(s.value for s in WHOLE_PREFIX_SOURCES)
    add("reads", declared_location(facts.account_id, facts.region, facts.name), frozenset({"declared"}))
    for written in facts.lineage_io.writes:
        if written.role is ArtifactRole.MODEL_PACKAGE:
            add("reads", written.location, frozenset({ParentSource.MODEL_PACKAGE.value}))
            continue
        add("reads", written.location)
        add("reads-under", written.location)
        for prefix in prefix_candidates(written.location)[1:]:
            add("reads", prefix, whole)
    return lookups


def _reassess(entry: IndexEntry, late: Late, deps: Dependencies, config: ServiceConfig) -> list[str]:
    now = deps.clock()
    if not deps.store.exists(entry.record_key):
        waited = (now - entry.end_time).total_seconds()
        if waited < config.parent_max_wait_seconds:
            raise ChildRecordPending(f"{entry.job_name} read {late.record.job.name}'s work and has no record yet")
        deps.log.warning("reader has no record; not re-assessed", extra={"job": entry.job_name})
        return []
    original = deps.store.get_record(entry.record_key)
    if any(
        p.source == ParentSource.DECLARED.value and p.job is None and p.status == "resolved"
        for p in original.lineage.parents
    ):
        return []  # the job declares that it starts from no earlier job
    written = []
    for _ in range(SETTLE_ROUNDS):
        key = _settle(entry.record_key, original, late, deps, config, now)
        if key is None:
            break
        written.append(key)
    return written


def _settle(
    child_key: str, original: AuditRecord, late: Late, deps: Dependencies, config: ServiceConfig, now: datetime
) -> str | None:
    """Write the addendum of everything counted so far plus ``late``, unless an assessment already counts it."""
    assessments = [(child_key, original), *addenda(deps.store, child_key)]
    self_id = node_id(original.job.arn, original.job.name)
    graph = parent_graph(late.record, late.key)
    ancestry = union(
        self_id,
        [
            *((recorded_ancestors(r), r.job.name) for _, r in assessments),
            ((*graph.ancestors, graph.node), late.record.job.name),
        ],
    )
    if any(union(self_id, [(recorded_ancestors(r), "")]).covers(ancestry) for _, r in assessments):
        return None
    latest_key, latest = max(assessments, key=lambda kr: (kr[1].lineage.cumulative_flops, kr[1].recorded_at))
    key = addendum_key(child_key, ancestry.digest())
    record = _addendum(original, child_key, latest, [k for k, _ in assessments[1:]], ancestry, late, config, now)
    put = deps.store.put_record(key, record)
    sealed = record if record.sha256 else record.sealed()
    deps.log.warning(
        "job re-assessed after a late parent",
        extra={"job": original.job.name, "parent": late.record.job.name, "key": key, "outcome": sealed.outcome},
    )
    if put.written or not announced(deps, key):
        announce(sealed, key, deps, config, fresh=put.written)
    return key


def _addendum(
    original: AuditRecord,
    child_key: str,
    latest: AuditRecord,
    builds_on: list[str],
    ancestry: Ancestry,
    late: Late,
    config: ServiceConfig,
    now: datetime,
) -> AuditRecord:
    lineage = _lineage(original, latest, ancestry, late)
    status = LineageStatus(lineage.status or LineageStatus.COMPLETE.value)
    result = classify(
        lineage.cumulative_flops,
        original.base_model.pretrain_flops,
        systemic_risk_base=original.base_model.systemic_risk,
        primary_policy=latest.primary_policy,
        approaching_fraction=config.approaching_fraction,
    )
    result = never_lower(apply_lineage_rule(result, status, lineage.incomplete_reasons), policy_results(latest))
    late_parents = list(
        dict.fromkeys([*(latest.addendum.late_parents if latest.addendum else []), late.record.job.name])
    )
    late_keys = [*(latest.addendum.late_parent_record_keys if latest.addendum else []), late.key]
    reason = (
        f"re-assessed: {late.record.job.name} was recorded after this job, which read its work "
        f"({late.link.location}); its compute and its ancestors' are now counted, each once. This addendum "
        f"supersedes the figure of {child_key} (kept as written)"
    )
    record = latest.model_copy(
        update={
            "record_id": str(uuid.uuid5(RECORD_NAMESPACE, f"{original.job.arn}#addendum-{ancestry.digest()}")),
            "recorded_at": now,
            "lineage": lineage,
            "classifications": [PolicyClassification.from_result(r) for r in result.results],
            "primary_policy": result.primary_policy,
            "outcome": result.primary.outcome.value,
            "warnings": list(dict.fromkeys([*latest.warnings, reason, *ancestry.cycles, *result.warnings])),
            "addendum": AddendumInfo(
                of_record_key=child_key,
                of_record_sha256=original.sha256,
                builds_on=builds_on,
                reason=reason,
                late_parents=late_parents,
                late_parent_record_keys=list(dict.fromkeys(late_keys)),
            ),
            "energy": None,
            "obligations": None,
            "sha256": "",
        }
    )
    return with_energy_and_obligations(record, _block_inputs(latest, late, config))


def _lineage(original: AuditRecord, latest: AuditRecord, ancestry: Ancestry, late: Late) -> Lineage:
    """The child's lineage with the late parent counted: never below what was recorded."""
    before = latest.lineage
    own = original.lineage.own_flops
    cumulative = max(own + ancestry.flops, before.cumulative_flops)
    reasons = list(before.incomplete_reasons)
    status = before.status if before.status in ("incomplete", "declared") else LineageStatus.COMPLETE.value
    if late.record.lineage.status == "incomplete":
        status = LineageStatus.INCOMPLETE.value
        reasons.append(f"parent {late.record.job.name}'s own lineage is incomplete")
    parents = [p for p in before.parents if p.job != late.record.job.name]
    chain = [*before.chain, *late.record.lineage.chain, late.record.job.name]
    return before.model_copy(
        update={
            "parent_job": before.parent_job or late.record.job.name,
            "parent_record_key": before.parent_record_key or late.key,
            "parent_cumulative_flops": cumulative - own,
            "cumulative_flops": cumulative,
            "chain": [j for j in dict.fromkeys(chain) if j != original.job.name],
            "status": status,
            "parents": [*parents, late.link],
            "incomplete_reasons": reasons,
            "ancestors": ancestor_links(ancestry),
        }
    )


def _block_inputs(latest: AuditRecord, late: Late, config: ServiceConfig) -> BlockInputs:
    """The parents' energy (what the record had from its earlier parents plus the late parent's lineage) and the
    earliest crossing among them."""
    energy, parent_energy = latest.energy, late.record.energy
    before = None
    if energy is not None and energy.lineage_kwh is not None and energy.kwh is not None:
        before = energy.lineage_kwh - energy.kwh
    kwh = None
    if before is not None and parent_energy is not None and parent_energy.lineage_kwh is not None:
        kwh = before + parent_energy.lineage_kwh
    crossings = [
        o.crossed_at
        for o in (late.record.obligations, latest.obligations)
        if o is not None and o.crossed_at is not None and o.crossed_in_job != latest.job.name
    ]
    return BlockInputs(
        established_outside_eu=config.established_outside_eu,
        energy=config.energy,
        parent_lineage_kwh=kwh,
        parent_crossed_at=min(crossings) if crossings else None,
    )
