"""A mirror against its pull manifest: every object ``pull`` copied is still there, nothing there it did not copy.

The digests prove what they list; the pull manifest says what the bucket held when the mirror was pulled. A
record removed from a mirror whose records no digest lists yet (or a digest removed with its records) is found
here: the manifest still names it. A file the manifest does not name was not copied from the bucket. A mirror
without a manifest (copied by other means) has no such list: the report says so.
"""

from __future__ import annotations

from datetime import datetime

from flopsmeter.audit.digests import parse_iso
from flopsmeter.audit.keys import CLUSTERS_PREFIX, COMPACTED_PREFIX, DIGESTS_PREFIX, RECORDS_PREFIX
from flopsmeter.compliance.verify.findings import VerifyReport, Window
from flopsmeter.compliance.verify.sources import Source

MISSING = {RECORDS_PREFIX: "record_missing", CLUSTERS_PREFIX: "record_missing", DIGESTS_PREFIX: "digest_missing",
           COMPACTED_PREFIX: "compaction_missing"}  # fmt: skip
NO_MANIFEST_NOTE = (
    "no pull manifest: a file removed from this folder is found only where a digest or compaction manifest lists it"
)


def check_pulled(source: Source, report: VerifyReport, window: Window) -> None:
    """Compare the mirror's files with its pull manifest (nothing to do for the bucket itself)."""
    manifest = source.pull_manifest()
    if manifest is None:
        if not getattr(source, "has_versions", True):
            report.note(NO_MANIFEST_NOTE)
        return
    already = {f.object for f in report.failures}
    checked = 0
    for key, entry in sorted(manifest.objects.items()):
        problem = next((code for prefix, code in MISSING.items() if key.startswith(prefix)), None)
        if problem is None or not window.contains(_written(entry)):
            continue
        checked += 1
        if key not in manifest.files and key not in already:
            report.fail(
                key,
                problem,
                f"listed in the pull manifest (version {entry.get('version_id')}, written "
                f"{entry.get('last_modified')}) but not in the mirror (removed after the pull)",
            )
    for key in sorted(manifest.files - manifest.objects.keys()):
        checked += 1
        report.fail(
            key,
            "not_pulled",
            "in the mirror but not in its pull manifest: not copied from the bucket (added by other means)",
        )
    report.pulled_objects_checked = checked


def _written(entry: dict[str, object]) -> datetime | None:
    try:
        return parse_iso(str(entry["last_modified"]))
    except (KeyError, ValueError):
        return None
