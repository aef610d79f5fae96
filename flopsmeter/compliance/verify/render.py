"""``verify``'s result for people (text) and the two lists every reader needs: what was verified, and what was not.

``VerifyReport.to_dict`` is the JSON form; ``verified_and_not`` feeds both this text and the HTML report, so the
two say the same thing.
"""

from __future__ import annotations

from flopsmeter.compliance.verify.findings import FAILED, UNVERIFIED, VerifyReport
from flopsmeter.compliance.verify.pulled import NO_MANIFEST_NOTE

NOT_COVERED_SHOWN = 50
ANCHOR_NOTE = "not an independent trust anchor"


def verified_and_not(report: VerifyReport) -> tuple[list[str], list[str]]:
    """What this run proved, and what it did not (each a sentence)."""
    done: list[str] = []
    if report.records_covered:
        done.append(
            f"{report.records_covered} of {report.records_checked} record(s) listed, with the same version and "
            "hashes, in a signed digest"
        )
    if report.digests_checked:
        done.append(f"{report.digests_checked} digest(s): location, body hash, signature, chain links, no gaps")
    for chain, span in sorted(report.coverage.items()):
        done.append(f"{chain}: digests cover {span['from'] or 'the beginning'} to {span['to']}")
    if report.pulled_objects_checked is not None:
        done.append(f"{report.pulled_objects_checked} object(s) of the pull manifest: none removed, none added")
    if report.compacted_partitions_checked:
        done.append(f"{report.compacted_partitions_checked} compacted partition(s): Parquet rows = manifest = records")
    if report.catalog_partitions_checked is not None:
        done.append(f"{report.catalog_partitions_checked} partition(s) the catalog serves: each its newest generation")
    return done, _not_verified(report)


def _not_verified(report: VerifyReport) -> list[str]:
    missing: list[str] = []
    if report.records_checked == 0 and report.digests_checked == 0:
        missing.append("nothing to verify: no record and no digest in scope")
    if report.not_yet_covered:
        missing.append(
            f"{len(report.not_yet_covered)} record(s) listed in no digest yet (only their own sha256 checked, "
            "which a record rewritten and re-sealed whole would pass): the next digest covers them"
        )
    if report.period["from"] or report.period["to"]:
        missing.append(f"anything outside {report.period['from'] or 'the beginning'} to {report.period['to'] or 'now'}")
    if any(ANCHOR_NOTE in note for note in report.notes):
        missing.append(
            "the signing key itself: signatures were checked with the public key copy stored next to the digests "
            "(pass --public-key, or verify the bucket with KMS)"
        )
    if NO_MANIFEST_NOTE in report.notes:
        missing.append("that no file was removed from this folder (no pull manifest)")
    if report.catalog_not_checked:
        missing.append(f"which generation Athena serves for each compacted partition: {report.catalog_not_checked}")
    if report.catalog_not_registered:
        missing.append(
            f"{len(report.catalog_not_registered)} compacted partition(s) the catalog does not serve (query "
            "--compacted reads their JSON records; the next compaction run registers them)"
        )
    if report.not_yet_compacted:
        missing.append(f"{report.not_yet_compacted} record(s) written after their partition's compaction")
    return missing


def render_text(report: VerifyReport) -> str:
    lines = [
        f"Checked {report.source}: {report.records_checked} records, {report.digests_checked} digests, "
        f"{len(report.chains)} chain(s)"
    ]
    lines.extend(f"  note: {note}" for note in report.notes)
    lines.extend(f"FAIL {f.object}: {f.problem}: {f.detail}" for f in report.failures)
    done, missing = verified_and_not(report)
    if done:
        lines.append("Verified:")
        lines.extend(f"  - {line}" for line in done)
    if missing:
        lines.append("Not verified:")
        lines.extend(f"  - {line}" for line in missing)
    if report.not_yet_covered:
        lines.append(f"Records no digest lists yet: {len(report.not_yet_covered)}")
        lines.extend(f"  {key}" for key in report.not_yet_covered[:NOT_COVERED_SHOWN])
        if len(report.not_yet_covered) > NOT_COVERED_SHOWN:
            lines.append(f"  … and {len(report.not_yet_covered) - NOT_COVERED_SHOWN} more")
    lines.append(f"Result: {verdict_line(report)}")
    return "\n".join(lines)


def verdict_line(report: VerifyReport) -> str:
    """``OK``, ``UNVERIFIED (why)`` or ``FAILED (n problem(s))``."""
    if report.verdict == FAILED:
        return f"FAILED ({len(report.failures)} problem(s))"
    if report.verdict == UNVERIFIED:
        if report.not_yet_covered:
            return (
                f"UNVERIFIED ({len(report.not_yet_covered)} record(s) not covered by a signed digest; nothing failed)"
            )
        return "UNVERIFIED (nothing to verify: no record and no digest)"
    return "OK"
