"""Lineage index entries: which job (and which audit record) produced an artifact location or a model package.

The classifier writes one small immutable object per location a job wrote to (``index/v1/...``, keys in
``flopsmeter.audit.keys``) when it classifies the job, so a later job that reads one of those locations finds its
parent with one lookup per input prefix. Entries are written with ``If-None-Match: *`` (first write wins) and
never change; a redelivery writes the same bytes under the same key.

Issue 23 adds three kinds: ``contains`` (the job wrote somewhere under ``location``, a prefix), ``read`` (the job
read exactly ``location``) and ``read_under`` (it read somewhere under the prefix ``location``); the reads carry the
reader's start time, so a parent recorded late finds the children that started after it ended and read its work.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict

from flopsmeter.audit.keys import artifact_index_key, job_index_key, model_package_index_key, timed_index_key

INDEX_FORMAT: Final = "flopsmeter-lineage-index/1"


class IndexEntry(BaseModel):
    """One indexed location (a normalised S3 URI, a model package ARN or a job ARN) and the job behind it."""

    model_config = ConfigDict(extra="ignore", frozen=True)  # later formats may add fields

    format: Literal["flopsmeter-lineage-index/1"] = INDEX_FORMAT
    kind: Literal["artifact", "model_package", "job", "contains", "read", "read_under"]
    # what was written there, or (a read) how the reader found it: ``flopsmeter.domain.lineage.ParentSource``
    role: Literal[
        "model_artifacts", "output", "checkpoint", "model_package", "job",
        "declared", "input_channel", "hyperparameter", "environment",
    ]  # fmt: skip
    location: str
    job_name: str
    job_arn: str
    account_id: str
    region: str
    end_time: datetime
    record_key: str
    start_time: datetime | None = None  # a read: when the reader started (a parent must have ended before)
    indexed_location: str | None = None  # contains / read_under: the prefix the entry is filed under

    def key(self) -> str:
        """The entry's object key (derived from the entry alone, so a retry writes the same key)."""
        if self.kind == "contains":
            return timed_index_key("contains", self.indexed_location or self.location, self.end_time, self.job_name)
        if self.kind in ("read", "read_under"):
            kind = "reads" if self.kind == "read" else "reads-under"
            moment = self.start_time or self.end_time
            return timed_index_key(kind, self.indexed_location or self.location, moment, self.job_name)
        if self.kind == "artifact":
            return artifact_index_key(self.location, self.end_time, self.job_name)
        if self.kind == "model_package":
            return model_package_index_key(self.location)
        return job_index_key(self.location)

    def to_json_bytes(self) -> bytes:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json_bytes(cls, body: bytes) -> IndexEntry:
        """Parse a stored entry; ValueError (pydantic's ValidationError) when it is not one."""
        return cls.model_validate_json(body)
