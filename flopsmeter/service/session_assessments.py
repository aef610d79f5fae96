"""A running training session's assessments in the audit bucket (issue 26 item 1).

Each scheduled pass over running sessions stores what it saw as one immutable object
(``flopsmeter.audit.keys.session_assessment_key``): the session's DescribeTrainingSession detail, its estimate and
whether it exceeded a threshold. The first pass that finds it over one also writes the crossing marker
(``session_crossing_key``, first write wins) with the crossing moment and the Art. 52(1) due date; the final
record reads it, so the clock runs from the crossing, never from the session's end.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flopsmeter.audit.keys import session_crossing_key, session_index_prefix
from flopsmeter.audit.record import canonical_json
from flopsmeter.errors import PermanentStoreError
from flopsmeter.ports import IndexStore

ASSESSMENT_FORMAT: Final = "flopsmeter-session-assessment/1"


class SessionAssessment(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    format: Literal["flopsmeter-session-assessment/1"] = ASSESSMENT_FORMAT
    session_arn: str
    session_name: str
    assessed_at: datetime
    status: str
    flops: float = Field(ge=0)
    worst_outcome: str
    exceeded: bool
    crossed_at: datetime | None = None  # on the crossing marker: the earliest moment the crossing can have happened
    crossed_at_basis: str | None = None
    notification_due_at: datetime | None = None  # Art. 52(1), where it applies
    threshold: float | None = None
    policies: list[str] = Field(default_factory=list)
    detail: dict[str, Any] = Field(default_factory=dict)  # DescribeTrainingSession as it was (JSON-ready)

    def to_json_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))


def write_assessment(store: IndexStore, key: str, assessment: SessionAssessment) -> bool:
    """Store it once (first write wins); True when this call wrote it."""
    written, _, _ = store.put_immutable(key, assessment.to_json_bytes())
    return written


def read_crossing(store: IndexStore, session_arn: str) -> SessionAssessment | None:
    """The crossing marker of a session, when a running pass saw it cross."""
    key = session_crossing_key(session_arn)
    try:
        if not store.exists(key):
            return None
        return SessionAssessment.model_validate_json(store.get(key).body)
    except (PermanentStoreError, ValidationError):
        return None


def last_assessment(store: IndexStore, session_arn: str) -> SessionAssessment | None:
    """The latest running assessment of a session (None when no pass saw it, or it cannot be read)."""
    keys = [str(item.get("Key", "")) for item in store.list_keys(session_index_prefix(session_arn))]
    passes = sorted(k for k in keys if k.endswith("Z.json"))
    if not passes:
        return None
    try:
        return SessionAssessment.model_validate_json(store.get(passes[-1]).body)
    except (PermanentStoreError, ValidationError):
        return None
