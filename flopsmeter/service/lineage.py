"""Lineage: a job that starts from other jobs' artifacts carries their compute, each ancestor once.

Parents are declared (``FLOPSMETER_PARENT_JOB`` / ``flopsmeter:parent-job``: job names or training-job ARNs,
comma-separated for a merge, or ``none``) or inferred from what the job reads through the lineage index
(``lineage_index``): the job that wrote the location (or a prefix above it), or, for an input channel or checkpoint
prefix that contains other jobs' outputs, each of them (more than a few: it cannot decide, and says so). Declared
and inferred parents are counted together (a declaration adds parents; a warning names inferred ones it left out);
``none`` records the inferred ones as ``overridden``. An invalid declaration counts as an unresolved parent.

Each counted parent's record is the source: its own compute and its ancestors (``lineage.ancestors``), merged into
one set where a shared ancestor counts once and a cycle is refused (``flopsmeter.domain.lineage_graph``). Its
current assessment is read (an addendum after a late parent, ``service.ancestry``). A parent without a record yet
is waited for (``ParentRecordPending``, retried through the queue) for a bounded time; after that its hardware
ceiling stands in for its own compute when SageMaker can describe it (its ancestors are then unknown: the lineage
is incomplete). A parent that cannot be read at all is unresolved. What an incomplete lineage is classified as:
``flopsmeter.domain.lineage``; a parent recorded after the job: ``service.late_parents``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from flopsmeter import contract
from flopsmeter.audit.keys import valid_job_name
from flopsmeter.audit.lineage_index import IndexEntry
from flopsmeter.audit.record import AuditRecord, ParentLink
from flopsmeter.contract import TERMINAL_STATUSES
from flopsmeter.domain.lineage import (
    MAX_DECLARED_PARENTS,
    NO_PARENT,
    WHOLE_PREFIX_SOURCES,
    ParentFigure,
    ParentSource,
    ParentStatus,
    declared_parent_names,
)
from flopsmeter.domain.lineage_graph import Ancestor, AncestorBasis, Ancestry, ParentGraph, merge_ancestry, node_id
from flopsmeter.domain.numbers import parse_flops
from flopsmeter.errors import JobNotFound, ParentRecordPending, PermanentStoreError
from flopsmeter.ports import JobSource, RecordStore
from flopsmeter.service.ancestry import current_record, parent_graph
from flopsmeter.service.facts import JobFacts, clean_text, facts_from_description, job_ceiling, training_duration
from flopsmeter.service.lineage_index import Lookup, find_contained, find_job, find_model_package, find_writer
from flopsmeter.service.lineage_io import LineageIO, Read


@dataclass(frozen=True)
class Lineages:
    """Everything ``resolve_lineage`` found: the links to record, the figures the rule adds up, and why not
    complete."""

    links: list[ParentLink] = field(default_factory=list)
    figures: list[ParentFigure] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    chain: list[str] = field(default_factory=list)  # every counted parent's ancestors and itself, oldest first
    declared_parent_flops: float | None = None
    unread_inputs: bool = False  # inputs beyond the lookup bound: a parent may be missing
    # issue 16: from the parents' records, when they have the blocks (None: unknown)
    lineage_kwh: float | None = None  # the parents' lineage energy, summed; None unless every parent has one
    crossed_at: datetime | None = None  # the earliest crossing among the parents
    # issue 23: the threshold that crossing is for, and the earliest start in the parents' lineages
    crossed_threshold: float | None = None
    earliest_start: datetime | None = None
    ancestry: Ancestry = field(default_factory=lambda: Ancestry(()))  # issue 23: every ancestor once

    @property
    def first(self) -> ParentLink | None:
        counted = (ParentStatus.RESOLVED.value, ParentStatus.CEILING.value)
        return next((link for link in self.links if link.status in counted and link.job), None)


@dataclass(frozen=True)
class Resolved:
    """One counted parent after reading: the link to record, the figure the rule adds up, its chain, its record,
    and its node with its ancestors (None: nothing could be read)."""

    link: ParentLink
    figure: ParentFigure
    chain: list[str] = field(default_factory=list)
    record: AuditRecord | None = None
    graph: ParentGraph | None = None


@dataclass(frozen=True)
class Context:
    facts: JobFacts
    jobs: JobSource
    store: RecordStore
    now: datetime
    max_wait_seconds: float


def resolve_lineage(
    facts: JobFacts, io: LineageIO, *, jobs: JobSource, store: RecordStore, now: datetime, max_wait_seconds: float
) -> Lineages:
    ctx = Context(facts, jobs, store, now, max_wait_seconds)
    declared, warnings = _declared(facts)
    inferred, inferred_warnings = _inferred(ctx, io)
    warnings += inferred_warnings
    declares_none = any(d.job is None and d.status != ParentStatus.UNRESOLVED.value for d in declared)
    overridden = [replace_link(i, status=ParentStatus.OVERRIDDEN) for i in inferred] if declares_none else []
    counted = [] if declares_none else _unique([*declared, *inferred], facts)
    warnings += _undeclared_warning(declared, counted)
    parents = [_resolve(ctx, link) for link in counted]
    links = [p.link for p in parents] + [d for d in declared if declares_none] + overridden
    reasons = [
        p.link.reason or f"parent {p.link.job} could not be read"
        for p in parents
        if p.link.status != ParentStatus.RESOLVED.value or not p.figure.complete
    ]
    unread = bool(io.skipped_reads) and not declares_none  # declaring no parent makes inference moot
    if unread:
        reasons.append(f"{io.skipped_reads} input location(s) beyond the first {len(io.reads)} were not looked up")
    ancestry = merge_ancestry(node_id(facts.arn, facts.name), [p.graph for p in parents if p.graph is not None])
    warnings += ancestry.cycles
    chain = [job for p in parents for job in p.chain if job != facts.name]
    kwh, crossed = _energy_and_crossing(parents)
    declared_flops = _declared_parent_flops(facts, warnings)
    figures = [p.figure for p in parents]
    line, earliest = _ancestor_moments(parents, crossed)
    return Lineages(
        links, figures, reasons, warnings, list(dict.fromkeys(chain)), declared_flops, unread, kwh, crossed,
        line, earliest, ancestry,
    )  # fmt: skip


def _undeclared_warning(declared: list[ParentLink], counted: list[ParentLink]) -> list[str]:
    """A declaration that leaves out a parent the job was found to read: both are counted, and the record says so."""
    named = {d.job for d in declared if d.job}
    if not named:
        return []
    extra = [c for c in counted if c.source != ParentSource.DECLARED.value and c.job and c.job not in named]
    if not extra:
        return []
    names = ", ".join(f"{c.job} ({c.source})" for c in extra)
    return [
        f"the job reads the output of {names}, which its declared parent(s) leave out: counted too (a declaration "
        "adds parents; declare every parent, or none, to state the lineage)"
    ]


def _ancestor_moments(parents: list[Resolved], crossed: datetime | None) -> tuple[float | None, datetime | None]:
    """The threshold the parents' earliest crossing is for, and the earliest start in their lineages (issue 23)."""
    records = [p.record for p in parents if p.record is not None]
    line = next(
        (r.obligations.threshold for r in records if r.obligations is not None and r.obligations.crossed_at == crossed),
        None,
    )
    starts = [
        (r.obligations.lineage_started_at if r.obligations is not None else None)
        or r.job.start_time
        or r.job.creation_time
        or r.job.end_time
        for r in records
    ]
    return (line if crossed is not None else None), (min(starts) if starts else None)


def _energy_and_crossing(parents: list[Resolved]) -> tuple[float | None, datetime | None]:
    """The parents' summed lineage energy (None unless each has it) and their earliest crossing (issue 16)."""
    records = [p.record for p in parents]
    energies = [r.energy.lineage_kwh if r is not None and r.energy is not None else None for r in records]
    kwh = sum(e for e in energies if e is not None) if energies and None not in energies else None
    crossings = [r.obligations.crossed_at for r in records if r is not None and r.obligations is not None]
    known = [c for c in crossings if c is not None]
    return kwh, min(known) if known else None


def replace_link(link: ParentLink, **changes: object) -> ParentLink:
    values = {k: (v.value if isinstance(v, ParentStatus) else v) for k, v in changes.items()}
    return link.model_copy(update=values)


# --- what the job says and reads --------------------------------------------------------------------------


def _declared(facts: JobFacts) -> tuple[list[ParentLink], list[str]]:
    """The declared parents (one or several), each a link; ``none`` is one link without a job."""
    env_value, tag_value = facts.setting(contract.ENV_PARENT_JOB, contract.TAG_PARENT_JOB)
    raw = env_value if env_value is not None else tag_value
    if raw is None or not raw.strip():
        return [], []
    names = declared_parent_names(raw)
    shown, _ = clean_text(raw, "parent job", 120)
    link = ParentLink(source=ParentSource.DECLARED.value, location=shown, status=ParentStatus.RESOLVED.value)
    if [n.lower() for n in names] == [NO_PARENT]:
        return [link.model_copy(update={"reason": "the job declares that it starts from no earlier job"})], []
    if len(names) > MAX_DECLARED_PARENTS or NO_PARENT in (n.lower() for n in names):
        problem = f"declared parents {shown!r}: more than {MAX_DECLARED_PARENTS}, or 'none' among job names"
        return [replace_link(link, status=ParentStatus.UNRESOLVED, reason=problem)], [problem]
    links: list[ParentLink] = []
    warnings: list[str] = []
    for text in names:
        one, why = _declared_one(facts, text, link)
        links.append(one)
        warnings += [why] if why else []
    return links, warnings


def _declared_one(facts: JobFacts, text: str, link: ParentLink) -> tuple[ParentLink, str | None]:
    shown, _ = clean_text(text, "parent job", 120)
    link = link.model_copy(update={"location": shown})
    name, arn = _name_and_arn(text)
    problem = None
    if name is None or not valid_job_name(name):
        problem = f"declared parent {shown!r} is neither a training job name nor a training-job ARN"
    elif (arn is None and name == facts.name) or arn == facts.arn:
        problem = f"lineage cycle refused: the job names itself as its parent ({shown!r})"
    if problem:
        return replace_link(link, status=ParentStatus.UNRESOLVED, reason=problem), problem
    return link.model_copy(update={"job": name, "job_arn": arn}), None


def _name_and_arn(text: str) -> tuple[str | None, str | None]:
    """``(name, None)`` for a job name; ``(name, arn)`` for a training-job ARN; ``(None, None)`` otherwise."""
    if not text.startswith("arn:"):
        return text, None
    parts = text.split(":", 5)
    if len(parts) == 6 and parts[2] == "sagemaker" and parts[5].startswith("training-job/"):
        return parts[5].removeprefix("training-job/"), text
    return None, None


def _inferred(ctx: Context, io: LineageIO) -> tuple[list[ParentLink], list[str]]:
    links: list[ParentLink] = []
    warnings: list[str] = []
    before = ctx.facts.start_time or ctx.facts.creation_time or ctx.facts.end_time
    for read in io.reads:
        link = ParentLink(source=read.source.value, location=read.location, status=ParentStatus.RESOLVED.value)
        found = _lookup(ctx, read, before)
        lookups = [found] if found is not None else _contained(ctx, read, before)
        for lookup in lookups:
            if lookup.entry is None:
                links.append(replace_link(link, status=ParentStatus.UNRESOLVED, reason=lookup.problem))
            else:
                links.append(_from_entry(link, lookup.entry))
        if found is None and len(lookups) > 1:
            names = ", ".join(sorted(lk.entry.job_name for lk in lookups if lk.entry))
            warnings.append(
                f"input {read.location} contains the outputs of {len(lookups)} recorded jobs ({names}): the tool "
                "cannot decide which the job started from, so all are counted; declare the parent "
                f"({contract.TAG_PARENT_JOB}) to say which"
            )
    return links, warnings


def _contained(ctx: Context, read: Read, before: datetime) -> list[Lookup]:
    """An input prefix (channel or checkpoint) above other jobs' outputs: each job whose output it contains."""
    if read.source not in WHOLE_PREFIX_SOURCES:
        return []
    return find_contained(ctx.store, read.location, before=before, exclude_job=ctx.facts.name)


def _lookup(ctx: Context, read: Read, before: datetime) -> Lookup | None:
    if read.source is not ParentSource.MODEL_PACKAGE:
        return find_writer(ctx.store, read.location, before=before, exclude_job=ctx.facts.name)
    found = find_model_package(ctx.store, read.location)
    if found is None:  # a customized model package no recorded job produced: compute unknown, never zero
        return Lookup(None, f"model package {read.location} was not produced by a job this audit trail recorded")
    return found


def _from_entry(link: ParentLink, entry: IndexEntry) -> ParentLink:
    return link.model_copy(update={"job": entry.job_name, "job_arn": entry.job_arn, "record_key": entry.record_key})


def _unique(links: list[ParentLink], facts: JobFacts) -> list[ParentLink]:
    """One link per parent job (the first way it was found); unresolved links without a job all stay. A job in
    this account and region is the same parent by name or by ARN."""
    seen: set[str] = set()
    kept = []
    for link in links:
        place = link.job_arn.split(":")[3:5] if link.job_arn else [facts.region, facts.account_id]
        identity = link.job if place == [facts.region, facts.account_id] else link.job_arn
        if identity is not None and identity in seen:
            continue
        if identity is not None:
            seen.add(identity)
        kept.append(link)
    return kept


def _declared_parent_flops(facts: JobFacts, warnings: list[str]) -> float | None:
    env_value, tag_value = facts.setting(contract.ENV_PARENT_FLOPS, contract.TAG_PARENT_FLOPS)
    parsed = parse_flops(env_value if env_value is not None else tag_value, field="parent FLOPs")
    if parsed.warning:
        warnings.append(parsed.warning)
    return parsed.value


# --- reading a parent's record ------------------------------------------------------------------------------


def _resolve(ctx: Context, link: ParentLink) -> Resolved:
    """The link with what was read, the figure the rule counts (its FLOPs None: unresolved), the ancestor chain."""
    if link.status == ParentStatus.UNRESOLVED.value or link.job is None:
        return Resolved(link, ParentFigure(link.job or "?", None))
    if link.record_key is None:
        located = _locate(ctx, link)
        if isinstance(located, str):
            unresolved = replace_link(link, status=ParentStatus.UNRESOLVED, reason=located)
            return Resolved(unresolved, ParentFigure(link.job, None))
        link = located
    return _read_record(ctx, link)


def _locate(ctx: Context, link: ParentLink) -> ParentLink | str:
    """A declared parent's record key: from SageMaker in this account and region, else from the job index."""
    assert link.job is not None
    if link.job_arn is None or _same_place(ctx, link):
        try:
            parent = facts_from_description(ctx.jobs.describe(link.job), {})
        except JobNotFound:
            return f"parent job {link.job} does not exist in SageMaker (account {ctx.facts.account_id})"
        return link.model_copy(update={"job_arn": parent.arn, "record_key": parent.record_key})
    found = find_job(ctx.store, link.job_arn)  # another account or region
    if found is None or found.entry is None:
        why = found.problem if found else "no record of it in this audit bucket"
        return f"parent job {link.job_arn} is in another account or region: {why}"
    return _from_entry(link, found.entry)


def _read_record(ctx: Context, link: ParentLink) -> Resolved:
    assert link.job is not None and link.record_key is not None
    key = link.record_key
    try:
        if ctx.store.exists(key):
            _, record = current_record(ctx.store, key, ctx.store.get_record(key))  # an addendum counts, if any
            complete = record.lineage.status != "incomplete"
            reason = None if complete else f"parent {link.job}'s own lineage is incomplete"
            resolved = link.model_copy(update={"cumulative_flops": record.lineage.cumulative_flops, "reason": reason})
            figure = ParentFigure(link.job, record.lineage.cumulative_flops, complete=complete)
            chain = [*record.lineage.chain, link.job]
            return Resolved(resolved, figure, chain, record, parent_graph(record, key))
    except (PermanentStoreError, ValueError) as err:  # unreadable/unknown-schema record: as if it had none (no wait)
        return _without_record(ctx, link, f"parent record {key} could not be read ({type(err).__name__})", wait=False)
    return _without_record(ctx, link, f"parent job {link.job} has no audit record", wait=True)


def _without_record(ctx: Context, link: ParentLink, why: str, *, wait: bool) -> Resolved:
    """Wait for the record a while; then the parent's hardware ceiling when SageMaker can describe it."""
    assert link.job is not None
    waited = (ctx.now - ctx.facts.end_time).total_seconds()
    if wait and waited < ctx.max_wait_seconds:
        raise ParentRecordPending(f"{why} yet; waited {waited:.0f}s of {ctx.max_wait_seconds:.0f}s")
    try:
        description = ctx.jobs.describe(link.job) if _same_place(ctx, link) else None
    except JobNotFound:
        description = None
    if description is None:
        reason = f"{why} and cannot be described here"
        return Resolved(replace_link(link, status=ParentStatus.UNRESOLVED, reason=reason), ParentFigure(link.job, None))
    parent = facts_from_description(description, {})
    if parent.status not in TERMINAL_STATUSES:  # still running: its compute so far, up to now
        seconds, source, billable, _ = training_duration(description, ctx.now)
        parent = replace(
            parent,
            end_time=ctx.now,
            training_seconds=seconds,
            training_seconds_source=source,
            billable_seconds=billable,
        )
    ceiling, _ = job_ceiling(parent)
    reason = (
        f"{why} after {waited:.0f}s; its hardware ceiling {ceiling.flops:.2e} stands in for its own compute "
        "(its own ancestors, if any, are unknown)"
    )
    linked = replace_link(link, status=ParentStatus.CEILING, cumulative_flops=ceiling.flops, reason=reason)
    node = Ancestor(node_id(parent.arn, link.job), ceiling.flops, AncestorBasis.CEILING, link.job)
    figure = ParentFigure(link.job, ceiling.flops, complete=False)
    return Resolved(linked, figure, [link.job], graph=ParentGraph(node))


def _same_place(ctx: Context, link: ParentLink) -> bool:
    return link.job_arn is None or link.job_arn.split(":")[3:5] == [ctx.facts.region, ctx.facts.account_id]
