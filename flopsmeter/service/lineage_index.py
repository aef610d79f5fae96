"""The lineage index in the audit bucket: written for every job the classifier records, read to find parents.

Writing: before a job's record, one immutable entry per location it wrote (model artifacts, its output prefix,
its checkpoint prefix, the model package it produced) and one for the job's ARN, each naming the job and its
record key (``flopsmeter.audit.lineage_index``). The entries go first, so a retry repeats them (first write
wins) and a record never exists without them; they are written before the CloudTrail wait, so a child that
ends soon after its parent still finds it.

Reading: for each location a job reads, its ancestors are looked up longest first (bounded,
``flopsmeter.domain.lineage.prefix_candidates``); at the first prefix with a writer that ended before the job
started, the latest such writer is the parent. A model package is one lookup by its ARN.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from flopsmeter import contract
from flopsmeter.audit.keys import (
    artifact_index_prefix,
    job_index_key,
    model_package_index_key,
    parse_timed_index_key,
    timed_index_prefix,
    valid_job_name,
)
from flopsmeter.audit.lineage_index import IndexEntry
from flopsmeter.domain.lineage import (
    MAX_CONTAINED_WRITERS,
    ArtifactRole,
    ParentSource,
    declared_location,
    declared_parent_names,
    prefix_candidates,
)
from flopsmeter.errors import PermanentStoreError
from flopsmeter.ports import IndexStore
from flopsmeter.service.facts import JobFacts
from flopsmeter.service.lineage_io import LineageIO


@dataclass(frozen=True)
class Lookup:
    """A lookup's answer: the producing job's entry, or why it could not be read (``entry`` None)."""

    entry: IndexEntry | None
    problem: str | None = None


def index_entries(facts: JobFacts, io: LineageIO) -> list[IndexEntry]:
    """The entries that say this job produced what it wrote (and where its record is)."""
    common: dict[str, Any] = {
        "job_name": facts.name,
        "job_arn": facts.arn,
        "account_id": facts.account_id,
        "region": facts.region,
        "end_time": facts.end_time,
        "record_key": facts.record_key,
    }
    entries = [IndexEntry(kind="job", role="job", location=facts.arn, **common)]
    contained: dict[str, IndexEntry] = {}
    for written in io.writes:
        kind = "model_package" if written.role is ArtifactRole.MODEL_PACKAGE else "artifact"
        entries.append(IndexEntry(kind=kind, role=written.role.value, location=written.location, **common))
        for prefix in [] if kind == "model_package" else prefix_candidates(written.location)[1:]:
            entry = IndexEntry(
                kind="contains", role=written.role.value, location=written.location, indexed_location=prefix, **common
            )
            contained.setdefault(prefix, entry)  # one entry per prefix: any of the job's writes under it
    return [*entries, *contained.values(), *read_entries(facts, io, common)]


def read_entries(facts: JobFacts, io: LineageIO, common: dict[str, Any]) -> list[IndexEntry]:
    """What the job read (issue 23): exactly there, and under each ancestor prefix, with its start time."""
    start = facts.start_time or facts.creation_time or facts.end_time
    found: dict[str, IndexEntry] = {}
    for read in io.reads:
        exact = IndexEntry(kind="read", role=read.source.value, location=read.location, start_time=start, **common)
        found.setdefault(exact.key(), exact)
        if read.source is ParentSource.MODEL_PACKAGE:
            continue
        for prefix in prefix_candidates(read.location)[1:]:
            under = IndexEntry(
                kind="read_under", role=read.source.value, location=read.location, indexed_location=prefix,
                start_time=start, **common,
            )  # fmt: skip
            found.setdefault(under.key(), under)
    for location in declared_reads(facts):
        entry = IndexEntry(kind="read", role="declared", location=location, start_time=start, **common)
        found.setdefault(entry.key(), entry)
    return list(found.values())


def declared_reads(facts: JobFacts) -> list[str]:
    """The declared parents as indexed reads (``declared_location``); what is not a job name or ARN is left out."""
    env_value, tag_value = facts.setting(contract.ENV_PARENT_JOB, contract.TAG_PARENT_JOB)
    raw = env_value if env_value is not None else tag_value
    found = []
    for text in declared_parent_names(raw or ""):
        parts = text.split(":", 5)
        if len(parts) == 6 and parts[0] == "arn" and parts[5].startswith("training-job/"):
            found.append(declared_location(parts[4], parts[3], parts[5].removeprefix("training-job/")))
        elif valid_job_name(text):
            found.append(declared_location(facts.account_id, facts.region, text))
    return found


def write_index(facts: JobFacts, io: LineageIO, store: IndexStore) -> int:
    """Write the job's entries (first write wins; a retry is a no-op). Returns how many were new.

    Transient failures retry the message; a refused write is permanent (dead-lettered with the reason): a
    missing entry would let a child's lineage miss this job.
    """
    written = 0
    for entry in index_entries(facts, io):
        key = entry.key()
        new, _, _ = store.put_immutable(key, entry.to_json_bytes())
        written += int(new)
    return written


def find_writer(store: IndexStore, location: str, *, before: datetime, exclude_job: str) -> Lookup | None:
    """The job that last wrote ``location`` (or its longest indexed ancestor) and ended before ``before``."""
    for prefix in prefix_candidates(location):
        try:
            latest = _latest_writer(store, artifact_index_prefix(prefix), before, exclude_job)
        except PermanentStoreError as err:  # refused: the lineage cannot be checked, so it is not complete
            return Lookup(None, f"the lineage index for {prefix} could not be listed ({err})")
        if latest is not None:
            return _read_entry(store, latest)
    return None


def _latest_writer(store: IndexStore, prefix: str, before: datetime, exclude_job: str) -> str | None:
    writers = _writers_before(store, prefix, before, exclude_job)
    return writers[-1][1] if writers else None


def _writers_before(store: IndexStore, prefix: str, before: datetime, exclude_job: str) -> list[tuple[str, str]]:
    """``(job, key)`` of the writer entries under an index prefix that ended before ``before``, in end-time order."""
    found = []
    for item in store.list_keys(prefix):
        try:
            _, end, job = parse_timed_index_key(str(item.get("Key")))
        except ValueError:
            continue
        if end > before:
            break  # keys are in end-time order
        if job != exclude_job:
            found.append((job, str(item["Key"])))
    return found


def find_contained(store: IndexStore, prefix: str, *, before: datetime, exclude_job: str) -> list[Lookup]:
    """The jobs that wrote somewhere under ``prefix`` and ended before ``before`` (one lookup each, latest entry per
    job). More than ``MAX_CONTAINED_WRITERS`` of them: one Lookup without an entry (the tool cannot decide)."""
    try:
        jobs = dict(_writers_before(store, timed_index_prefix("contains", prefix), before, exclude_job))
    except PermanentStoreError as err:
        return [Lookup(None, f"the lineage index under {prefix} could not be listed ({err})")]
    if len(jobs) > MAX_CONTAINED_WRITERS:
        return [
            Lookup(
                None,
                f"input {prefix} contains the outputs of {len(jobs)} recorded jobs (more than "
                f"{MAX_CONTAINED_WRITERS}): could not decide which the job started from",
            )
        ]
    return [_read_entry(store, key) for key in jobs.values()]


def find_readers(store: IndexStore, kind: str, location: str, *, since: datetime, exclude_job: str) -> list[IndexEntry]:
    """The jobs that read ``location`` (``kind`` "reads") or under it ("reads-under") and started at or after
    ``since``; unreadable entries are skipped (the readers found are still re-assessed)."""
    found = []
    for item in store.list_keys(timed_index_prefix(kind, location)):
        try:
            _, start, job = parse_timed_index_key(str(item.get("Key")))
        except ValueError:
            continue
        if start < since or job == exclude_job:
            continue
        lookup = _read_entry(store, str(item["Key"]))
        if lookup.entry is not None:
            found.append(lookup.entry)
    return found


def find_model_package(store: IndexStore, model_package_arn: str) -> Lookup | None:
    """The job that produced this model package, or None when no recorded job did."""
    return _find_single(store, model_package_index_key(model_package_arn))


def find_job(store: IndexStore, job_arn: str) -> Lookup | None:
    """A recorded job by its ARN (any account or region whose records this bucket holds)."""
    return _find_single(store, job_index_key(job_arn))


def _find_single(store: IndexStore, key: str) -> Lookup | None:
    try:
        if not store.exists(key):
            return None
    except PermanentStoreError as err:
        return Lookup(None, f"lineage index entry {key} could not be read ({err})")
    return _read_entry(store, key)


def _read_entry(store: IndexStore, key: str) -> Lookup:
    try:
        body = store.get(key).body
    except PermanentStoreError as err:
        return Lookup(None, f"lineage index entry {key} could not be read ({err})")
    try:
        return Lookup(IndexEntry.from_json_bytes(body))
    except (ValidationError, ValueError) as err:
        return Lookup(None, f"lineage index entry {key} is not a valid entry ({type(err).__name__})")
