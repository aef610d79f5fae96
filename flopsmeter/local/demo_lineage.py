"""Demo scenario (issue 18): lineage nobody tagged, and a parent that cannot be found.

- a two-step fine-tune: the second job names only the first job's model artifact in its input channel (no tag, no
  environment variable); each step is below the line, together they exceed it, and the record says how the parent
  was found;
- a job whose declared parent does not exist: its lineage is incomplete, it is classified at least
  'approaching' (never as if the parent had used nothing), and the alert asks for a declaration.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from rich.table import Table

from flopsmeter import contract
from flopsmeter.audit.record import AuditRecord
from flopsmeter.aws.store import AuditStore
from flopsmeter.domain.hardware import hardware_ceiling
from flopsmeter.domain.thresholds import DEFAULT_PRIMARY_POLICY, get_policy, threshold_for
from flopsmeter.local.demo_jobs import DemoJob
from flopsmeter.local.demo_session import Demo, drain_inbox
from flopsmeter.local.runner import put_state_change

STEP_1, STEP_2, ORPHAN = "demo-two-step-sft", "demo-two-step-dpo", "demo-orphan-child"
MISSING_PARENT = "demo-deleted-parent"
INSTANCE, COUNT = "ml.p5.48xlarge", 4
SHARE = 0.6  # each step's ceiling as a share of the default threshold: below alone, above together


def step_hours() -> float:
    """Hours of 4 x p5.48xlarge whose hardware ceiling is ``SHARE`` of the default threshold (unknown base)."""
    threshold = threshold_for(get_policy(DEFAULT_PRIMARY_POLICY), None).value
    return SHARE * threshold / hardware_ceiling(INSTANCE, COUNT, 3600.0).flops


def run_lineage_scenario(demo: Demo) -> None:
    demo.section("Lineage nobody tagged; a parent that cannot be found")
    hours = step_hours()
    now = datetime.now(UTC)
    step_1 = DemoJob(STEP_1, "carol", INSTANCE, COUNT, hours, story="step 1 of a fine-tune split in two")
    demo.create_job(step_1)
    demo.finish_job(step_1, now - timedelta(hours=hours, minutes=15))
    artifact = demo.aws("sagemaker").describe_training_job(TrainingJobName=STEP_1)["ModelArtifacts"]
    source = {"S3DataType": "S3Prefix", "S3Uri": artifact["S3ModelArtifacts"]}
    channel = {"ChannelName": "model", "DataSource": {"S3DataSource": source}}
    step_2 = DemoJob(STEP_2, "carol", INSTANCE, COUNT, hours, extra={"InputDataConfig": [channel]})
    orphan = DemoJob(ORPHAN, "bob", "ml.g5.2xlarge", 1, 2.0, environment={contract.ENV_PARENT_JOB: MISSING_PARENT})
    for job in (step_2, orphan):
        demo.create_job(job)
        demo.finish_job(job, now - timedelta(minutes=2))
    demo.out.print(
        f"{STEP_2} reads only {artifact['S3ModelArtifacts']} (input channel 'model'; no tags, no environment); "
        f"{ORPHAN} declares {contract.ENV_PARENT_JOB}={MISSING_PARENT}, a job that does not exist"
    )
    put_state_change(demo.resources, demo.state_change_event(STEP_1))
    demo.run_classifier("lineage: step 1")
    for name in (STEP_2, ORPHAN):
        put_state_change(demo.resources, demo.state_change_event(name))
    demo.run_classifier("lineage: step 2 and the orphan")
    _show_and_check(demo)


def _show_and_check(demo: Demo) -> None:
    store = AuditStore(demo.aws("s3"), demo.resources.audit_bucket)
    by_name: dict[str, AuditRecord] = {}
    for item in store.list_keys("records/"):
        name = item["Key"].rsplit("/", 1)[-1].removesuffix(".json")
        if name in (STEP_1, STEP_2, ORPHAN):
            by_name[name] = store.get_record(item["Key"])
    table = Table("job", "own FLOPs", "cumulative", "outcome", "lineage")
    for name in (STEP_1, STEP_2, ORPHAN):
        record = by_name.get(name)
        if record is None:
            table.add_row(name, "-", "-", "no record", "")
            continue
        lineage = record.lineage
        how = "; ".join(f"{p.job or p.location} via {p.source} ({p.status})" for p in lineage.parents) or "no parent"
        table.add_row(
            name,
            f"{lineage.own_flops:.2e}",
            f"{lineage.cumulative_flops:.2e}",
            record.outcome,
            f"{lineage.status}: {how}",
        )
    demo.out.print(table)
    step_1, step_2, orphan = (by_name.get(n) for n in (STEP_1, STEP_2, ORPHAN))
    tags = demo.aws("sagemaker").list_tags(ResourceArn=step_2.job.arn)["Tags"] if step_2 else ["?"]
    demo.check(
        "a two-step fine-tune adds up with no tag: step 2's parent is inferred from its input channel",
        step_1 is not None
        and step_2 is not None
        and not tags
        and step_1.outcome == "below"
        and step_2.outcome == "exceeds"
        and [(p.job, p.source, p.status) for p in step_2.lineage.parents] == [(STEP_1, "input_channel", "resolved")],
    )
    demo.check(
        "a declared parent that does not exist is never counted as zero: lineage incomplete, at least approaching",
        orphan is not None and orphan.lineage.status == "incomplete" and orphan.outcome == "approaching",
    )

    alerts = [json.loads(body) for body in drain_inbox(demo.aws("sqs"), demo.resources.alert_inbox_url)]
    asks = [a for a in alerts if ORPHAN in a.get("Subject", "") and contract.TAG_PARENT_FLOPS in a.get("Message", "")]
    for alert in asks:
        demo.out.print(f"[yellow]SNS alert[/]: {alert['Subject']}")
    demo.check("the orphan's alert asks for a declaration (flopsmeter:parent-flops)", len(asks) == 1)
