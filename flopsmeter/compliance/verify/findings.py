"""What ``verify`` found: one ``Finding`` per problem (object, problem code, why), collected in a ``VerifyReport``.

The verdict never says OK without proof: ``FAILED`` when anything failed; ``UNVERIFIED`` when nothing failed but
some record in scope is covered by no signed digest yet, or nothing at all was there to verify; ``OK`` only when
every record checked is listed, with its hashes, in a digest whose signature and chain verify.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Finding:
    object: str
    problem: str
    detail: str


OK, UNVERIFIED, FAILED = "OK", "UNVERIFIED", "FAILED"


@dataclass
class VerifyReport:
    source: str
    period: dict[str, str | None]
    records_checked: int = 0
    records_covered: int = 0  # records listed, with the same version, in a digest
    digests_checked: int = 0
    chains: list[str] = field(default_factory=list)
    coverage: dict[str, dict[str, str | None]] = field(default_factory=dict)  # chain -> what its digests cover
    failures: list[Finding] = field(default_factory=list)
    not_yet_covered: list[str] = field(default_factory=list)  # unverified: no digest lists them (yet)
    pulled_objects_checked: int | None = None  # a mirror's pull manifest entries compared (None: no manifest)
    compacted_partitions_checked: int = 0
    not_yet_compacted: int = 0
    catalog_partitions_checked: int | None = None  # served partitions compared with manifests (None: not read)
    catalog_not_registered: list[str] = field(default_factory=list)  # compacted, but the catalog serves none
    catalog_not_checked: str | None = None  # why the catalog was not read (there being compacted partitions)
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.failures:
            return FAILED
        if self.not_yet_covered or (self.records_checked == 0 and self.digests_checked == 0):
            return UNVERIFIED
        return OK

    @property
    def ok(self) -> bool:
        """Everything in scope proven (``verdict == OK``); False when anything failed or is unverified."""
        return self.verdict == OK

    def fail(self, obj: str, problem: str, detail: str) -> None:
        self.failures.append(Finding(obj, problem, detail))

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "verdict": self.verdict, **asdict(self)}


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
