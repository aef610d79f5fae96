"""``flopsmeter report --documentation --job JOB``: the training-compute and energy section of the technical
documentation of one modified model, drafted from its audit records (Markdown and HTML).

The modified model is the lineage that ends in JOB: JOB and the jobs whose checkpoints it continues
(``lineage.chain``). The section covers what AI Act Art. 53(1)(a) and Annex XI 2(d)-(e) ask, limited to the
modification (guideline para. 65): the compute in FLOP to two significant figures with the method of estimation
(para. 31), the assumptions and uncertainty (Annex A.2: accurate within 30 %), the training time, the known or
estimated energy, the base model's compute and its source, the policy readings, the provenance of each job
(CloudTrail, record hash, signed digest) and, on a crossing, the obligations and the Art. 52(1) due date.
It is a draft for a person to complete and sign off, never filed as is.

Every ancestor whose compute is in the figure is a job of the lineage (``lineage.ancestors``, each once; for a
record written before issue 23, ``lineage.chain`` and every counted parent); a job re-assessed after a late parent
is drafted from its latest addendum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flopsmeter.audit.keys import original_of
from flopsmeter.audit.record import AuditRecord
from flopsmeter.compliance.report import JobView, collect, current_views
from flopsmeter.domain.deadlines import due_text
from flopsmeter.domain.energy import format_kwh
from flopsmeter.errors import FlopsMeterError

GUIDELINE_MARGIN = 0.30  # Annex A.2: "accurate within an overall error margin of 30 % of the reported estimate"
METHOD_TITLES = {
    "metered": "metered",
    "hardware_ceiling": "hardware ceiling",
    "declared": "declared",
    "estimated": "estimated",
}
METHOD_EXPLAINED = {
    "metered": (
        "architecture-based count inside the training job (guideline Annex A.2.2): forward and backward matrix "
        "multiplications per token, attention included, frozen parameters taken into account; within the "
        "guideline's 30 % margin when the token count is complete"
    ),
    "hardware_ceiling": (
        "hardware-based upper bound (Annex A.2.1 with utilisation 1.0): accelerators x training seconds x dense peak "
        "FLOP/s. Not a +/-30 % estimate: the real compute is lower, typically by more than 30 %; report it as an "
        "upper bound or replace it with a metered figure"
    ),
    "declared": "declared by the provider; recorded, not checked by measurement",
    "estimated": (
        "estimated from the base model's parameters and the training tokens (Annex A.2.2, 6·P·D-style per-token "
        "costs); the upper end of the stated uncertainty is used"
    ),
}


class DocumentationError(FlopsMeterError):
    """No record for the job, or its lineage cannot be drafted."""


@dataclass
class LineageDoc:
    """What the templates render: the leaf job (the modified model) and its lineage, oldest first."""

    model_job: str
    leaf: JobView
    jobs: list[JobView]
    missing: list[str]
    generated_at: datetime
    source: str
    notes: list[str] = field(default_factory=list)

    @property
    def record(self) -> AuditRecord:
        return self.leaf.record

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(j.record.flops.method for j in self.jobs))

    @property
    def training_seconds(self) -> float:
        return sum(j.record.job.training_seconds for j in self.jobs)

    @property
    def energy_total_kwh(self) -> float | None:
        """The lineage's energy: the leaf record's lineage total, else the sum over the jobs found (None if any is
        unknown or a job of the lineage has no record)."""
        energy = self.record.energy
        if energy is not None and energy.lineage_kwh is not None:
            return energy.lineage_kwh
        values = [j.record.energy.kwh if j.record.energy else None for j in self.jobs]
        if self.missing or any(v is None for v in values):
            return None
        return sum(v for v in values if v is not None)


def sig2(value: float | None) -> tuple[str, int] | None:
    """``value`` to two significant figures as (mantissa, exponent): 2.345e24 -> ("2.3", 24) (guideline para. 31)."""
    if value is None:
        return None
    if value == 0:
        return "0", 0
    mantissa, exponent = f"{value:.1e}".split("e")
    return mantissa, int(exponent)


def flops_text(value: float | None) -> str:
    """``2.3 × 10^24 FLOP`` (Markdown / plain text)."""
    parts = sig2(value)
    if parts is None:
        return "unknown"
    return "0 FLOP" if parts[1] == 0 and parts[0] == "0" else f"{parts[0]} × 10^{parts[1]} FLOP"


def hours_text(seconds: float) -> str:
    hours = seconds / 3600.0
    return f"{hours:.2g} h" if hours < 100 else f"{float(f'{hours:.2g}'):,.0f} h"


def when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def build(root: Path, job: str, *, source: str | None = None, now: datetime | None = None) -> LineageDoc:
    """The lineage that ends in ``job``, from the records under ``root`` (a mirror or a folder of records)."""
    views, _errors = collect(root)
    current = current_views(views)
    leaf = next((v for v in current if v.record.job.name == job), None)
    if leaf is None:
        raise DocumentationError(f"no record for job {job!r} under {root}")
    by_key = {original_of(v.key): v for v in current}
    same_account = {
        v.record.job.name: v
        for v in current
        if (v.record.job.account_id, v.record.job.region) == (leaf.record.job.account_id, leaf.record.job.region)
    }
    jobs, missing = [], []
    for name, key in ancestor_jobs(leaf.record):
        view = (by_key.get(original_of(key)) if key else None) or same_account.get(name)
        if view is None:
            missing.append(name)
        else:
            jobs.append(view)
    jobs.append(leaf)
    notes = []
    if missing:
        notes.append(
            f"no record found for {', '.join(missing)} (ancestor(s) of {job}): their compute is included in the "
            "cumulative figure from the records' lineage, but their details are not shown"
        )
    if leaf.record.addendum is not None:
        notes.append(
            f"{job} was re-assessed after a parent was recorded late: its figures come from the addendum {leaf.key}, "
            f"which supersedes the figure of the original record {leaf.record.addendum.of_record_key} (kept as written)"
        )
    return LineageDoc(job, leaf, jobs, missing, now or datetime.now(UTC), source or str(root), notes)


def ancestor_jobs(record: AuditRecord) -> list[tuple[str, str | None]]:
    """``(job, record key)`` of every ancestor whose compute is in the record's figure, each once: its listed
    ancestors (stand-ins left out), else (a record before issue 23) its chain and every counted parent."""
    lineage = record.lineage
    if lineage.ancestors is not None:
        listed = [(a.job, a.record_key) for a in lineage.ancestors if a.job and a.basis in ("record", "ceiling")]
    else:
        counted = [p for p in lineage.parents if p.job and p.status in ("resolved", "ceiling")]
        listed = [*((name, None) for name in lineage.chain), *((p.job, p.record_key) for p in counted if p.job)]
    found: dict[str, str | None] = {}
    for name, key in listed:
        found[name] = found.get(name) or key
    return [(name, key) for name, key in found.items() if name != record.job.name]


def cell(text: object) -> str:
    """Free text made safe for one Markdown table cell (no pipes, no line breaks)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _environment(*, autoescape: bool) -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("flopsmeter.compliance", "templates"),
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(flops=flops_text, kwh=format_kwh, hours=hours_text, when=when, cell=cell, due=due_text)
    env.filters["pct"] = lambda v: f"{v * 100:.0f} %"
    return env


def render_markdown(doc: LineageDoc) -> str:
    """The section as Markdown (the source of both outputs)."""
    template = _environment(autoescape=False).get_template("documentation.md.j2")
    return str(
        template.render(
            doc=doc, r=doc.record, method_titles=METHOD_TITLES, method_explained=METHOD_EXPLAINED,
            margin=GUIDELINE_MARGIN,
        )
    )  # fmt: skip


def render_html(doc: LineageDoc, markdown: str | None = None) -> str:
    """A self-contained HTML page of the same Markdown (CommonMark + tables; raw HTML in the text is escaped)."""
    from markdown_it import MarkdownIt
    from markupsafe import Markup

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown or render_markdown(doc))
    template = _environment(autoescape=True).get_template("documentation.html.j2")
    return str(template.render(doc=doc, body=Markup(body)))


def write_documentation(root: Path, job: str, out: Path, *, source: str | None = None) -> tuple[Path, Path]:
    """Write ``out`` with ``.md`` and ``.html`` suffixes; returns both paths."""
    doc = build(root, job, source=source)
    markdown, page = out.with_suffix(".md"), out.with_suffix(".html")
    out.parent.mkdir(parents=True, exist_ok=True)
    text = render_markdown(doc)
    markdown.write_text(text, encoding="utf-8")
    page.write_text(render_html(doc, text), encoding="utf-8")
    return markdown, page
