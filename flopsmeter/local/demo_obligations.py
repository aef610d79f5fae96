"""Demo scenario (issue 16): a systemic-risk crossing with its notification due date, an energy figure in every
record, the open clocks (``query --deadlines``) and a documentation draft for one lineage.

Two fine-tunes of a systemic-risk original (Llama 3.1 405B, 3.8e25 FLOP, regulation.md Q4): the first stays below
the 3.3e24 line of the primary policy, the second continues from its checkpoint and takes the lineage over it. The
classifier places the crossing at the earliest moment the hardware could have reached it, starts the Art. 52(1)
clock there (due two weeks later), and the alert carries the date. Self-checking: every expectation is a check.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.table import Table

from flopsmeter import contract
from flopsmeter.aws.store import AuditStore
from flopsmeter.domain.deadlines import notification_due
from flopsmeter.domain.energy import format_kwh
from flopsmeter.local.demo_jobs import DemoJob
from flopsmeter.local.demo_session import Demo
from flopsmeter.local.runner import put_state_change

SYSTEMIC_BASE = {
    contract.ENV_PRETRAIN_FLOPS: "3.8e25",
    contract.ENV_BASE_MODEL: "meta-llama/Llama-3.1-405B",
    contract.ENV_SYSTEMIC_RISK_BASE: "true",
}
FIRST = DemoJob("demo-405b-sft", "carol", "ml.p5.48xlarge", 128, 300.0, environment=SYSTEMIC_BASE,
                story="systemic-risk base, 128 x p5 for 300 h: below the 3.3e24 line on its own")  # fmt: skip
SECOND = DemoJob(
    "demo-405b-dpo", "carol", "ml.p5.48xlarge", 128, 200.0,
    environment={**SYSTEMIC_BASE, contract.ENV_PARENT_JOB: FIRST.name},
    story="continues from demo-405b-sft: the lineage crosses 3.3e24 during this job",
)  # fmt: skip


def run_obligations_scenario(demo: Demo) -> None:
    demo.section("A systemic-risk crossing: obligations, the notification clock, energy, documentation")
    now = datetime.now(UTC)
    _play(demo, FIRST, end=now - timedelta(hours=SECOND.hours + 6))
    _play(demo, SECOND, end=now - timedelta(minutes=2))
    store = AuditStore(demo.aws("s3"), demo.resources.audit_bucket)
    records = {r.job.name: r for r in (store.get_record(o["Key"]) for o in store.list_keys("records/"))}
    _energy_table(demo, records)
    child = records.get(SECOND.name)
    obligations = child.obligations if child else None
    due = obligations.notification_due_at if obligations else None
    if obligations and obligations.crossed_at and due:
        demo.out.print(
            f"[bold]{SECOND.name}[/]: the lineage crossed {obligations.threshold:.2e} FLOPs on "
            f"{obligations.crossed_at:%Y-%m-%d %H:%M} UTC ({obligations.crossed_at_basis}); the modifier becomes the "
            f"provider of the modified model (Art. 53, limited to the modification), and the base is a "
            f"systemic-risk model: [bold red]notify the Commission by {due:%Y-%m-%d %H:%M} UTC[/] (Art. 52(1))"
        )
        for item in obligations.items:
            demo.out.print(f"  - {item.summary} [dim]({item.article})[/]")
    demo.check(
        "the systemic-risk crossing is due for notification two weeks after it (Reg. 1182/71, Brussels time)",
        obligations is not None
        and obligations.crossed_at is not None
        and due == notification_due(obligations.crossed_at)
        and obligations.crossed_in_job == SECOND.name,
    )
    first = records.get(FIRST.name)
    demo.check(
        "the first job of the lineage triggers nothing",
        first is not None and first.obligations is not None and not first.obligations.triggered,
    )
    demo.check(
        "every record has an energy figure",
        bool(records) and all(r.energy is not None and r.energy.kwh is not None for r in records.values()),
    )
    alerts = [json.loads(body) for body in _drain(demo.aws("sqs"), demo.resources.alert_inbox_url)]
    dated = [a.get("Subject", "") for a in alerts if "notify the Commission by" in a.get("Subject", "")]
    for subject in dated:
        demo.out.print(f"[yellow]SNS alert[/]: {subject}")
    demo.check("the crossing's alert carries the due date", bool(due) and any(f"{due:%Y-%m-%d}" in s for s in dated))
    _drain(demo.aws("sqs"), demo.resources.recorded_inbox_url)
    _deadlines_and_documentation(demo, store)


def _play(demo: Demo, job: DemoJob, *, end: datetime) -> None:
    demo.create_job(job)
    demo.finish_job(job, end)
    put_state_change(demo.resources, demo.state_change_event(job.name))
    demo.run_classifier(job.name)


def _energy_table(demo: Demo, records: dict[str, Any]) -> None:
    table = Table("job", "instances", "hours", "energy", "method", "lineage energy", title="Energy in every record")
    for record in sorted(records.values(), key=lambda r: r.job.end_time):
        energy = record.energy
        table.add_row(
            record.job.name,
            f"{record.job.instance_count} x {record.job.instance_type}",
            f"{record.job.training_seconds / 3600:.3g}",
            format_kwh(energy.kwh) if energy else "unknown",
            energy.method.replace("_", " ") if energy else "-",
            format_kwh(energy.lineage_kwh) if energy else "unknown",
        )
    demo.out.print(table)
    demo.out.print(
        "[dim]board power x accelerators x hours x PUE 1.15 (AWS 2024), utilisation 100 %: an upper estimate for the "
        "accelerators; host CPUs, memory and network not counted[/]"
    )


def _deadlines_and_documentation(demo: Demo, store: AuditStore) -> None:
    from flopsmeter.compliance.documentation import write_documentation
    from flopsmeter.compliance.mirror import pull
    from flopsmeter.compliance.query import Preset, preset_sql, render, run_duckdb
    from flopsmeter.compliance.query.deadlines import with_days_left

    mirror = demo.out_dir / "mirror"
    pull(store, mirror)
    clocks = with_days_left(run_duckdb(mirror, preset_sql(Preset(deadlines=True)), cache=False), datetime.now(UTC))
    demo.out.print("flopsmeter query --deadlines (open Art. 52(1) clocks):")
    demo.out.print(render(clocks, "table"))
    rows = [dict(zip(clocks.columns, row, strict=True)) for row in clocks.rows]
    demo.check(
        "query --deadlines lists the open clock",
        [(r["crossed_in_job"], r["state"]) for r in rows] == [(SECOND.name, "open")],
    )
    markdown, page = write_documentation(mirror, SECOND.name, demo.out_dir / "documentation" / SECOND.name)
    text = markdown.read_text(encoding="utf-8")
    demo.out.print(f"documentation draft (compute and energy section, Annex XI 2(d)-(e)): {markdown} and {page}")
    demo.check(
        "the documentation draft states the lineage's compute, energy and the notification due date",
        f"`{FIRST.name}`" in text and "Energy (Annex XI 2(e))" in text and "Notification to the Commission" in text,
    )


def _drain(sqs: Any, url: str) -> list[str]:
    bodies: list[str] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies
