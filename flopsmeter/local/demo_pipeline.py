"""The demo's first scenarios: the emulator with the stack's resources, a metered tiny fine-tuning, declared jobs,
their state-change events through EventBridge -> SQS -> the classifier (duplicate, out-of-order and malformed ones
too), and the reconciler for a lost event."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from rich.table import Table

from flopsmeter import contract
from flopsmeter.local import moto_ext
from flopsmeter.local.demo_jobs import DECLARED_JOBS, LOST_JOB, METERED_JOB, ROLE, DemoJob
from flopsmeter.local.demo_session import Demo, quiet
from flopsmeter.local.emulator import Emulator
from flopsmeter.local.runner import classifier_handler, local_context, put_state_change, reconciler_handler, send_raw
from flopsmeter.local.tiny_training import run_tiny_fine_tuning


def start(demo: Demo, emulator: Emulator) -> None:
    demo.section("Local AWS (moto) with the stack's resources")
    demo.resources = emulator.provision()
    with quiet(demo.log_path):  # the function's loggers print to the log file, not the terminal
        demo.classifier = classifier_handler(demo.resources)
    r = demo.resources
    table = Table(show_header=False)
    table.add_row("endpoint", f"{r.endpoint} (account {r.account_id}, {r.region}; no credentials, no network)")
    table.add_row("audit bucket", f"{r.audit_bucket}: Object Lock COMPLIANCE {r.retention_years} y, versioned")
    table.add_row(
        "events",
        f"EventBridge rule {r.rule_name} -> SQS {r.queue_url.rsplit('/', 1)[-1]} "
        f"(DLQ: permanent failures at once with the reason, others after {r.max_receive_count} deliveries) "
        "-> classifier Lambda (run in-process)",
    )
    table.add_row("alerts / signing", f"SNS {r.alert_topic_arn.rsplit(':', 1)[-1]}; KMS {r.signing_key_alias}")
    demo.out.print(table)
    iam = demo.aws("iam")
    iam.create_role(
        RoleName=ROLE,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": r.account_id}}],
            }
        ),
    )


def metered_job(demo: Demo) -> None:
    demo.section("A real (tiny) LoRA fine-tuning, metered by FlopsMeterCallback")
    job = DemoJob(
        METERED_JOB,
        "alice",
        "ml.g5.xlarge",
        1,
        0.0,
        environment={contract.ENV_BASE_MODEL: "demo/tiny-llama", contract.ENV_TRAINING_JOB_NAME: METERED_JOB},
    )
    demo.create_job(job)
    start = datetime.now(UTC)
    demo.set_state(METERED_JOB, status="InProgress", creation=start - timedelta(seconds=30), start=start)
    if demo.train:
        with demo.progress("training: a tiny LoRA fine-tuning on the CPU (logs: demo.log)"), quiet(demo.log_path):
            summary = run_tiny_fine_tuning(METERED_JOB, demo.out_dir / "train", demo.resources)
        demo.out.print(
            f"trained {summary['steps']} steps in {summary['seconds']:.1f} s; the meter emitted "
            f"{summary['flops']:.3e} FLOPs over {summary['tokens']} tokens ({summary['non_padding_tokens']} "
            f"non-padding) to CloudWatch namespace {contract.METRICS_NAMESPACE} (emulated)"
        )
    else:
        demo.out.print(
            "[yellow]--skip-training: the job runs without the meter and is classified on its hardware ceiling[/]"
        )
    demo.set_state(METERED_JOB, status="Completed", end=datetime.now(UTC))


def declared_jobs(demo: Demo) -> None:
    demo.section("More training jobs (durations declared; nothing runs)")
    table = Table("job", "created by", "instances", "hours", "status", "what it shows")
    end = datetime.now(UTC) - timedelta(minutes=2)
    for job in (*DECLARED_JOBS, LOST_JOB):
        demo.create_job(job)
        demo.finish_job(job, end)
        table.add_row(
            job.name,
            f"{ROLE}/{job.who}",
            f"{job.instance_count} x {job.instance_type}",
            f"{job.hours:g}",
            job.status,
            job.story,
        )
    demo.out.print(table)
    moto_ext.clear_cloudtrail_events(
        "demo-failed-oom",
        account_id=demo.resources.account_id,
        region=demo.resources.region,
        endpoint=demo.resources.endpoint,
    )


def push_events(demo: Demo) -> None:
    demo.section("SageMaker state-change events -> EventBridge -> SQS -> classifier")
    for name in [METERED_JOB, *(j.name for j in DECLARED_JOBS)]:
        put_state_change(demo.resources, demo.state_change_event(name))
    demo.out.print(f"{1 + len(DECLARED_JOBS)} terminal events put on the default bus ({LOST_JOB.name}'s is lost)")
    demo.run_classifier("terminal events")

    demo.section("Duplicate, out-of-order and malformed events")
    put_state_change(demo.resources, demo.state_change_event("demo-full-ft-unmetered"))
    demo.out.print("duplicate: demo-full-ft-unmetered's Completed event delivered again")
    put_state_change(demo.resources, demo.state_change_event(METERED_JOB, status="InProgress"))
    demo.out.print(
        "out of order: an InProgress event for demo-lora-metered after its Completed one; the rule "
        "forwards only terminal statuses, so it is also sent straight to the queue"
    )
    late = demo.state_change_event(METERED_JOB, status="InProgress")
    late["id"] = "out-of-order-inprogress"
    late["time"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    send_raw(demo.resources, json.dumps(late))
    bad = demo.state_change_event("demo-full-ft-unmetered")
    bad["detail"]["TrainingJobName"] = "../../etc/passwd"
    put_state_change(demo.resources, bad)
    demo.out.print("malformed: a Completed event whose job name is not a SageMaker job name")
    demo.run_classifier("duplicate, out-of-order, malformed")
    s3 = demo.aws("s3")
    versions = [
        v
        for v in s3.list_object_versions(Bucket=demo.resources.audit_bucket, Prefix="records/").get("Versions", [])
        if v["Key"].endswith("/demo-full-ft-unmetered.json")
    ]
    demo.out.print(
        f"duplicate delivery was a no-op: demo-full-ft-unmetered has {len(versions)} record "
        f"version(s) after 2 deliveries"
    )
    demo.check("a duplicate delivery writes nothing", len(versions) == 1)


def reconcile(demo: Demo) -> None:
    demo.section("Scheduled reconciler: a lost event never means a lost record")
    with demo.progress("reconciler: listing recent jobs and recording the missing ones"), quiet(demo.log_path):
        result = reconciler_handler(demo.resources)(
            {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}},
            local_context(demo.resources, "flopsmeter-reconciler"),
        )
    demo.out.print(f"reconciler: {json.dumps(result, default=str)[:300]}")
    demo.check("the reconciler records the job whose event was lost", LOST_JOB.name in str(result.get("recorded")))
