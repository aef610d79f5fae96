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

from flopsmeter.audit.keys import (
    artifact_index_prefix,
    job_index_key,
    model_package_index_key,
    parse_artifact_index_key,
)
from flopsmeter.audit.lineage_index import IndexEntry
from flopsmeter.domain.lineage import ArtifactRole, prefix_candidates
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
    for written in io.writes:
        kind = "model_package" if written.role is ArtifactRole.MODEL_PACKAGE else "artifact"
        entries.append(IndexEntry(kind=kind, role=written.role.value, location=written.location, **common))
    return entries


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
    latest: str | None = None
    for item in store.list_keys(prefix):
        try:
            _, end, job = parse_artifact_index_key(str(item.get("Key")))
        except ValueError:
            continue
        if end > before:
            break  # keys are in end-time order
        if job != exclude_job:
            latest = str(item["Key"])
    return latest


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
