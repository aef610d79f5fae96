"""``verify``'s result for people (text); ``VerifyReport.to_dict`` is the JSON form."""

from __future__ import annotations

from flopsmeter.compliance.verify.findings import VerifyReport

NOT_COVERED_SHOWN = 50


def render_text(report: VerifyReport) -> str:
    lines = [
        f"Verified {report.source}: {report.records_checked} records, {report.digests_checked} digests, "
        f"{len(report.chains)} chain(s)"
    ]
    if report.period["from"] or report.period["to"]:
        lines.append(f"Period: {report.period['from'] or 'beginning'} to {report.period['to'] or 'now'}")
    lines.extend(f"  note: {note}" for note in report.notes)
    lines.extend(f"FAIL {f.object}: {f.problem}: {f.detail}" for f in report.failures)
    if report.not_yet_covered:
        lines.append(
            f"Not yet covered by a digest (written after the newest digest; own hash checked): "
            f"{len(report.not_yet_covered)}"
        )
        lines.extend(f"  {key}" for key in report.not_yet_covered[:NOT_COVERED_SHOWN])
        if len(report.not_yet_covered) > NOT_COVERED_SHOWN:
            lines.append(f"  … and {len(report.not_yet_covered) - NOT_COVERED_SHOWN} more")
    if report.compacted_partitions_checked:
        lines.append(
            f"Compacted partitions checked: {report.compacted_partitions_checked} "
            f"({report.not_yet_compacted} record(s) written after their partition's compaction)"
        )
    lines.append("Result: OK" if report.ok else f"Result: FAILED ({len(report.failures)} problem(s))")
    return "\n".join(lines)
