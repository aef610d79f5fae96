"""Rich renderings shared by ``flopsmeter local ...`` and ``flopsmeter demo``: records, attempts, dead letters."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from flopsmeter.audit.record import AuditRecord
from flopsmeter.local.runner import Attempt

OUTCOME_STYLE = {"below": "green", "approaching": "yellow", "exceeds": "bold red"}


def flops(value: float | None) -> str:
    return "-" if value is None else f"{value:.2e}"


def outcome(text: str) -> str:
    return f"[{OUTCOME_STYLE.get(text, 'white')}]{text}[/]"


def principal(record: AuditRecord) -> str:
    trail = record.cloudtrail
    if trail.status == "found":
        return escape(trail.principal_arn or "(found, no principal)")
    return f"[dim]not found: {escape((trail.reason or '')[:60])}[/]"


def records_table(records: Iterable[AuditRecord], *, title: str = "Audit records") -> Table:
    table = Table(title=title, show_lines=True, expand=False)
    for name, justify in (
        ("job", "left"),
        ("status", "left"),
        ("FLOPs (method)", "right"),
        ("cumulative", "right"),
        ("threshold (primary)", "right"),
        ("ratio", "right"),
        ("outcome per policy", "left"),
        ("created by (CloudTrail)", "left"),
    ):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for r in records:
        primary = next((c for c in r.classifications if c.policy == r.primary_policy), r.classifications[0])
        per_policy = "\n".join(
            f"{'*' if c.policy == r.primary_policy else ' '}{c.policy}: {outcome(c.outcome)} ({c.scenario})"
            for c in r.classifications
        )
        lineage = f"\n[dim]parent {r.lineage.parent_job}[/]" if r.lineage.parent_job else ""
        table.add_row(
            r.job.name,
            r.job.status,
            f"{flops(r.flops.classified_flops)}\n[dim]{r.flops.method}[/]",
            f"{flops(r.lineage.cumulative_flops)}{lineage}",
            f"{flops(primary.threshold)}\n[dim]{primary.scenario}[/]",
            f"{primary.ratio:.3f}",
            per_policy,
            principal(r),
        )
    return table


def attempts_table(attempts: Iterable[Attempt], *, title: str = "Deliveries to the classifier") -> Table:
    table = Table(title=title)
    for name in ("job", "event id", "delivery", "result"):
        table.add_column(name, overflow="fold")
    for a in attempts:
        if a.dead_lettered:
            result = f"[yellow]dead-lettered[/]: {escape((a.reason or '')[:160])}"
        else:
            result = "[green]ok[/]" if a.ok else f"[red]failed[/]: {escape((a.reason or '')[:160])}"
        table.add_row(
            escape(a.job_name or "") or "[dim](unparseable)[/]",
            escape((a.event_id or "-")[:13]),
            str(a.receive_count),
            result,
        )
    return table


def dead_letters_table(
    entries: Iterable[dict[str, Any]], reasons: dict[str, str] | None = None, deliveries: dict[str, int] | None = None
) -> Table:
    """DLQ messages (``runner.peek_dead_letters``). The reason and the delivery count come from the message's own
    attributes when the classifier dead-lettered it; for a message the redrive policy moved (no attributes),
    ``reasons``/``deliveries`` per message id from the runner's attempts are shown when given."""
    table = Table(title="Dead-letter queue")
    for name in ("message", "job", "deliveries", "why", "body (start)"):
        table.add_column(name, overflow="fold")
    for e in entries:
        body = e.get("body", "")
        with contextlib.suppress(ValueError):
            body = json.dumps(json.loads(body), separators=(",", ":"))
        if e.get("reason"):
            count: Any = e.get("deliveries") or "?"
            why = f"{escape(e.get('error') or '')}: {escape(e['reason'])}"
        else:
            count = (deliveries or {}).get(e["message_id"], e.get("receive_count", "?"))
            known = (reasons or {}).get(e["message_id"])
            why = escape(known) if known else "[dim]no reason attached (moved by the redrive policy); see the log[/]"
        table.add_row(e["message_id"][:8], escape(e.get("job_name") or "-"), str(count), why, escape(body[:90]))
    return table


def console() -> Console:
    """Terminal width on a terminal; wide (no folding of ARNs and job names) when piped or captured."""
    import sys

    probe = Console()
    # bound to this stdout: the demo redirects sys.stdout to its log around noisy steps, and its spinner stays here
    return Console(file=sys.stdout, highlight=False, soft_wrap=False, width=None if probe.is_terminal else 200)
