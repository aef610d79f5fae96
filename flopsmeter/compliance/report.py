"""``flopsmeter report``: a self-contained HTML report for a compliance officer (jinja2, inline SVG, no assets).

Per period: how many jobs, how many over or near the line, the jobs closest to it (chart of FLOPs as a share
of each job's threshold, log scale). Per job: FLOPs against every policy's threshold (chart, log scale), how
the number was obtained and how uncertain it is, the base model's pretraining compute and its source, lineage,
the CloudTrail reference (who launched it), the record's SHA-256 and the signed digest that covers it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from flopsmeter.audit.digests import DIGEST_FORMAT
from flopsmeter.audit.keys import DIGESTS_PREFIX, original_of
from flopsmeter.audit.record import AuditRecord
from flopsmeter.compliance.accounts import only_accounts
from flopsmeter.compliance.errors import QueryError
from flopsmeter.compliance.query.flagged import SplitSet, flagged_sets
from flopsmeter.compliance.reevaluate import read_dir
from flopsmeter.compliance.verify import VerifyReport, verified_and_not
from flopsmeter.domain.deadlines import due_text
from flopsmeter.domain.numbers import format_flops

DETAILED_JOBS_MAX = 40  # per-job sections in a period report: the jobs nearest to or over the line
SUMMARY_ROWS_MAX = 500
AXIS_MIN_EXP, AXIS_MAX_EXP = 17, 26
METHOD_WORDS = {
    "metered": "measured inside the training job (architecture-based count per token)",
    "hardware_ceiling": "upper bound from the hardware: chips x seconds x peak speed, as if 100 % busy",
    "declared": "declared by the user (recorded, not trusted over a measurement or the ceiling)",
    "estimated": "estimated from what a managed service records (base model x technique x tokens), upper end",
}
OUTCOME_WORDS = {
    "below": "below the threshold",
    "approaching": "approaching the threshold (80 % or more)",
    "exceeds": "exceeds the threshold",
}


@dataclass
class JobView:
    key: str
    record: AuditRecord
    digest: dict[str, str] | None
    chart: str = ""

    @property
    def primary(self) -> Any:
        return next(
            (c for c in self.record.classifications if c.policy == self.record.primary_policy),
            self.record.classifications[0],
        )


@dataclass
class ReportData:
    title: str
    generated_at: datetime
    source: str
    period: str
    jobs: list[JobView]
    errors: list[tuple[str, str]] = field(default_factory=list)
    verification: VerifyReport | None = None
    splits: list[SplitSet] = field(default_factory=list)  # jobs each below, together above (issue 18)


# ---------------------------------------------------------------------------------------------------------------
# charts (inline SVG, log scale)


def _x(value: float, left: float, width: float, lo: float = AXIS_MIN_EXP, hi: float = AXIS_MAX_EXP) -> float:
    exp = math.log10(max(value, 10.0**lo))
    return left + (min(exp, hi) - lo) / (hi - lo) * width


def job_chart_svg(record: AuditRecord) -> str:
    """One row per policy: the job's FLOPs as a bar, the policy's threshold as a line, log scale 1e17..1e26."""
    value = record.lineage.cumulative_flops
    left, width, row_h, top = 190.0, 520.0, 34.0, 26.0
    height = top + row_h * len(record.classifications) + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 760 {height:.0f}" role="img" '
        f'aria-label="FLOPs of {record.job.name} against each policy threshold" class="chart">'
    ]
    for exp in range(AXIS_MIN_EXP, AXIS_MAX_EXP + 1):
        x = _x(10.0**exp, left, width)
        parts.append(f'<line x1="{x:.1f}" y1="{top - 6:.0f}" x2="{x:.1f}" y2="{height - 24:.0f}" class="grid"/>')
        parts.append(f'<text x="{x:.1f}" y="{height - 8:.0f}" class="tick">1e{exp}</text>')
    for i, c in enumerate(record.classifications):
        y = top + i * row_h
        cls = {"exceeds": "bar-over", "approaching": "bar-near"}.get(c.outcome, "bar-ok")
        parts.append(f'<text x="{left - 8:.0f}" y="{y + 15:.0f}" class="label">{_esc(c.policy)}</text>')
        parts.append(
            f'<rect x="{left:.1f}" y="{y + 4:.0f}" width="{_x(value, left, width) - left:.1f}" height="16" '
            f'class="{cls}"><title>{format_flops(value)} FLOPs</title></rect>'
        )
        tx = _x(c.threshold, left, width)
        parts.append(f'<line x1="{tx:.1f}" y1="{y:.0f}" x2="{tx:.1f}" y2="{y + 24:.0f}" class="threshold"/>')
        parts.append(
            f'<text x="{tx + 4:.1f}" y="{y + 31:.0f}" class="small">threshold {format_flops(c.threshold)} '
            f"({_esc(c.scenario)}) - ratio {c.ratio:.2f}</text>"
        )
    ceiling = record.flops.hardware_ceiling.flops
    cx = _x(ceiling, left, width)
    parts.append(
        f'<text x="{cx:.1f}" y="{top - 10:.0f}" class="small ceiling">▼ hardware ceiling {format_flops(ceiling)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def period_chart_svg(jobs: list[JobView]) -> str:
    """The jobs nearest the line: FLOPs as a share of the primary threshold (log scale, line at 1 and 0.8)."""
    rows = jobs[:15]
    left, width, row_h, top = 200.0, 500.0, 22.0, 20.0
    height = top + row_h * max(len(rows), 1) + 34
    lo, hi = -4, 1

    def x(ratio: float) -> float:
        return _x(max(ratio, 1e-12), left, width, lo, hi)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 760 {height:.0f}" role="img" '
        'aria-label="Jobs closest to the threshold" class="chart">'
    ]
    for exp in range(lo, hi + 1):
        gx = x(10.0**exp)
        parts.append(f'<line x1="{gx:.1f}" y1="{top - 6:.0f}" x2="{gx:.1f}" y2="{height - 26:.0f}" class="grid"/>')
        parts.append(f'<text x="{gx:.1f}" y="{height - 10:.0f}" class="tick">{10.0**exp:g}x</text>')
    for label, ratio, cls, dx, anchor in (
        ("threshold", 1.0, "threshold", 4, "start"),
        ("80 %", 0.8, "near", -4, "end"),
    ):
        parts.append(
            f'<line x1="{x(ratio):.1f}" y1="{top - 10:.0f}" x2="{x(ratio):.1f}" y2="{height - 26:.0f}" '
            f'class="{cls}"/><text x="{x(ratio) + dx:.1f}" y="{top - 8:.0f}" class="small" '
            f'text-anchor="{anchor}">{label}</text>'
        )
    for i, job in enumerate(rows):
        y = top + i * row_h
        c = job.primary
        cls = {"exceeds": "bar-over", "approaching": "bar-near"}.get(c.outcome, "bar-ok")
        parts.append(f'<text x="{left - 8:.0f}" y="{y + 13:.0f}" class="label">{_esc(job.record.job.name)}</text>')
        parts.append(
            f'<rect x="{left:.1f}" y="{y + 3:.0f}" width="{x(c.ratio) - left:.1f}" height="13" class="{cls}">'
            f"<title>{c.ratio:.3f} of {format_flops(c.threshold)}</title></rect>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


# ---------------------------------------------------------------------------------------------------------------
# data


def digest_index(root: Path) -> dict[str, dict[str, str]]:
    """record key -> the digest that lists it (key, period, signing key), from a mirror directory."""
    index: dict[str, dict[str, str]] = {}
    base = root / DIGESTS_PREFIX
    for path in sorted(base.rglob("*.json")) if base.is_dir() else []:
        try:
            doc = json.loads(path.read_bytes())
        except ValueError:
            continue
        if not isinstance(doc, dict) or doc.get("format") != DIGEST_FORMAT:
            continue
        for entry in doc.get("records") or []:
            if isinstance(entry, dict) and isinstance(entry.get("key"), str):
                index.setdefault(
                    entry["key"],
                    {
                        "key": path.relative_to(root).as_posix(),
                        "period_end": str(doc.get("period_end")),
                        "signed_by": str((doc.get("signature") or {}).get("key_id")),
                        "object_sha256": str(entry.get("object_sha256")),
                    },
                )
    return index


def collect(
    root: Path,
    *,
    job: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    accounts: frozenset[str] | None = None,
) -> tuple[list[JobView], list[tuple[str, str]]]:
    digests = digest_index(root)
    jobs, errors = [], []
    for key, body in only_accounts(read_dir(root), accounts):
        try:
            record = AuditRecord.model_validate_json(body)
        except ValidationError as err:
            errors.append((key, f"not a valid record: {str(err).splitlines()[0]}"))
            continue
        if job is not None and record.job.name != job:
            continue
        end_time = record.job.end_time
        if (start and end_time < start) or (end and end_time >= end):
            continue
        jobs.append(JobView(key, record, digests.get(key)))
    jobs.sort(key=lambda j: -j.primary.ratio)
    return jobs, errors


def current_views(views: list[JobView]) -> list[JobView]:
    """One view per job: its latest addendum by figure (then time), else its record."""
    best: dict[str, JobView] = {}
    for view in views:
        original = original_of(view.key)
        known = best.get(original)
        rank = (view.record.lineage.cumulative_flops, view.record.recorded_at)
        if known is None or rank > (known.record.lineage.cumulative_flops, known.record.recorded_at):
            best[original] = view
    return list(best.values())


def without_summed_attempts(views: list[JobView]) -> list[JobView]:
    """Drop the AWS Batch attempts whose service job is listed: its record sums them (an attempt whose service job
    is not recorded yet stays, so no recorded compute is left out). As ``compliance.query.current`` does in SQL."""
    service_jobs = {v.record.job.arn for v in views if v.record.batch and v.record.batch.role == "service_job"}
    return [
        v
        for v in views
        if not (v.record.batch and v.record.batch.role == "attempt" and v.record.batch.service_job_arn in service_jobs)
    ]


def summary(jobs: list[JobView]) -> dict[str, Any]:
    """Counts over each modification's current assessment (a re-assessed job once, by its latest addendum; an AWS
    Batch service job once, not again in its attempts); ``covered`` over every record listed (originals, addenda
    and attempts alike are evidence)."""
    current = without_summed_attempts(current_views(jobs))
    outcomes = {"exceeds": 0, "approaching": 0, "below": 0}
    for job in current:
        outcomes[job.record.outcome] = outcomes.get(job.record.outcome, 0) + 1
    methods: dict[str, int] = {}
    for job in current:
        methods[job.record.flops.method] = methods.get(job.record.flops.method, 0) + 1
    return {
        "jobs": len(current),
        "records": len(jobs),
        "re_assessed": sum(1 for j in jobs if j.record.addendum is not None),
        "outcomes": outcomes,
        "methods": methods,
        "covered": sum(1 for j in jobs if j.digest),
        "total_flops": sum(j.record.flops.classified_flops for j in current),
    }


def render_report(data: ReportData) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("flopsmeter.compliance", "templates"), autoescape=select_autoescape(["html", "j2"])
    )
    env.filters["flops"] = format_flops
    env.filters["when"] = lambda d: "-" if d is None else d.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    env.filters["due"] = lambda d: "-" if d is None else due_text(d)
    detailed = data.jobs[:DETAILED_JOBS_MAX]
    for job in detailed:
        job.chart = job_chart_svg(job.record)
    from markupsafe import Markup

    return env.get_template("report.html.j2").render(
        data=data,
        stats=summary(data.jobs),
        detailed=detailed,
        rows=data.jobs[:SUMMARY_ROWS_MAX],
        period_chart=Markup(period_chart_svg(data.jobs)),
        charts={j.key: Markup(j.chart) for j in detailed},
        method_words=METHOD_WORDS,
        outcome_words=OUTCOME_WORDS,
        single=len(data.jobs) == 1,
        integrity=verified_and_not(data.verification) if data.verification else ([], []),
    )


def write_report(
    root: Path,
    out: Path,
    *,
    job: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    source: str | None = None,
    verification: VerifyReport | None = None,
    accounts: frozenset[str] | None = None,
) -> ReportData:
    jobs, errors = collect(root, job=job, start=start, end=end, accounts=accounts)
    if job:
        period = f"job {job}"
    elif start or end:
        period = f"jobs ending {start.date() if start else 'any time'} to {end.date() if end else 'now'}"
    else:
        period = "all jobs in the audit trail"
    if accounts is not None:
        period += f"; accounts {', '.join(sorted(accounts))}"
    data = ReportData(
        title="FLOPs compliance report",
        generated_at=datetime.now(UTC),
        source=source or str(root),
        period=period,
        jobs=jobs,
        errors=errors,
        verification=verification,
    )
    if not job:
        try:
            data.splits = _splits(root, start, end)
        except QueryError as err:  # an unreadable file: listed, the rest of the report still written
            data.errors.append(("(possible splitting)", str(err)))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(data), encoding="utf-8")
    return data


def _splits(root: Path, start: datetime | None, end: datetime | None) -> list[SplitSet]:
    """The period's sets of jobs that are each below the line but together above it (``query --by-principal``)."""
    when = "%Y-%m-%d %H:%M:%S"
    return flagged_sets(
        root,
        since=start.astimezone(UTC).strftime(when) if start else None,
        until=end.astimezone(UTC).strftime(when) if end else None,
    )
