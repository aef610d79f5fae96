"""What ``verify`` found: one ``Finding`` per problem (object, problem code, why), collected in a ``VerifyReport``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Finding:
    object: str
    problem: str
    detail: str


@dataclass
class VerifyReport:
    source: str
    period: dict[str, str | None]
    records_checked: int = 0
    digests_checked: int = 0
    chains: list[str] = field(default_factory=list)
    failures: list[Finding] = field(default_factory=list)
    not_yet_covered: list[str] = field(default_factory=list)
    compacted_partitions_checked: int = 0
    not_yet_compacted: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, obj: str, problem: str, detail: str) -> None:
        self.failures.append(Finding(obj, problem, detail))

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, **asdict(self)}


@dataclass(frozen=True)
class Window:
    """The period asked for, ``[start, end)`` (None: open), and how stale the newest digest may be."""

    start: datetime | None = None
    end: datetime | None = None
    max_digest_age: timedelta | None = None

    def contains(self, moment: datetime | None) -> bool:
        if moment is None:
            return True
        return (self.start is None or moment >= self.start) and (self.end is None or moment < self.end)
