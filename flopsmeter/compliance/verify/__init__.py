"""``flopsmeter verify``: check the audit trail against its signed digest chain (like CloudTrail validate-logs).

For each account/region chain it checks every digest (its location, its body hash, its signature, the link to the
previous digest and that periods tile with no gap: ``chains``), then every record (its own ``sha256``, that it is
listed in a digest with the same version and hashes, that it was written once) and every digest entry (that its
record still exists: ``records``), a mirror's files against its pull manifest (nothing removed, nothing added:
``pulled``), then every compacted partition (its Parquet rows are the records its manifest lists, with the records'
hashes: ``compaction``) and, given the catalog, that Athena serves each partition's newest generation
(``catalog``). A record no digest lists yet is unverified: the verdict is then UNVERIFIED, never OK (its own hash
is still checked). Each problem names the object and says why. It reads the bucket or a local mirror
(``sources``); ``render`` prints the result and what was and was not verified.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flopsmeter.audit.digests import iso
from flopsmeter.compliance.verify.catalog import check_catalog
from flopsmeter.compliance.verify.chains import check_chains, check_digest_versions, load_chains
from flopsmeter.compliance.verify.compaction import SeenRecord, check_compaction
from flopsmeter.compliance.verify.findings import FAILED, OK, UNVERIFIED, Finding, VerifyReport, Window
from flopsmeter.compliance.verify.pulled import check_pulled
from flopsmeter.compliance.verify.records import check_records, read_seen, record_versions_by_key
from flopsmeter.compliance.verify.render import render_text, verified_and_not
from flopsmeter.compliance.verify.sources import BucketSource, DirSource, ObjectVersion, Source

DEFAULT_MAX_DIGEST_AGE = timedelta(hours=2)  # hourly digests, written a few minutes after the hour, plus slack

__all__ = [
    "DEFAULT_MAX_DIGEST_AGE",
    "FAILED",
    "OK",
    "UNVERIFIED",
    "BucketSource",
    "DirSource",
    "Finding",
    "ObjectVersion",
    "Source",
    "VerifyReport",
    "render_text",
    "verified_and_not",
    "verify",
]


def verify(
    source: Source,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    max_digest_age: timedelta | None = DEFAULT_MAX_DIGEST_AGE,
) -> VerifyReport:
    """Verify records and digests written in ``[start, end)`` (all when None). Read-only."""
    report = VerifyReport(source.description, {"from": iso(start) if start else None, "to": iso(end) if end else None})
    window = Window(start, end, max_digest_age)
    check_digest_versions(source, report)
    chains = load_chains(source, report, window)
    entries = check_chains(source, report, chains, window)
    versions = record_versions_by_key(source)
    seen: dict[str, SeenRecord] = {}
    check_records(source, report, chains, entries, window, versions, seen)
    check_pulled(source, report, window)

    def lookup(key: str) -> SeenRecord | None:
        if key not in seen and key in versions:
            found = read_seen(source, versions[key])
            if found is None:
                return None
            seen[key] = found
        return seen.get(key)

    check_catalog(source, report, check_compaction(source, report, versions, lookup))
    return report
