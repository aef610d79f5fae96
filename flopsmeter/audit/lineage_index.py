"""Lineage index entries: which job (and which audit record) produced an artifact location or a model package.

The classifier writes one small immutable object per location a job wrote to (``index/v1/...``, keys in
``flopsmeter.audit.keys``) when it classifies the job, so a later job that reads one of those locations finds its
parent with one lookup per input prefix. Entries are written with ``If-None-Match: *`` (first write wins) and
never change; a redelivery writes the same bytes under the same key.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict

from flopsmeter.audit.keys import artifact_index_key, job_index_key, model_package_index_key

INDEX_FORMAT: Final = "flopsmeter-lineage-index/1"


class IndexEntry(BaseModel):
    """One indexed location (a normalised S3 URI, a model package ARN or a job ARN) and the job behind it."""

    model_config = ConfigDict(extra="ignore", frozen=True)  # later formats may add fields

    format: Literal["flopsmeter-lineage-index/1"] = INDEX_FORMAT
    kind: Literal["artifact", "model_package", "job"]
    role: Literal["model_artifacts", "output", "checkpoint", "model_package", "job"]
    location: str
    job_name: str
    job_arn: str
    account_id: str
    region: str
    end_time: datetime
    record_key: str

    def key(self) -> str:
        """The entry's object key (derived from the entry alone, so a retry writes the same key)."""
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
