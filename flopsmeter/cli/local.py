"""CLI: ``flopsmeter local up|down|status|replay|digest`` (the embedded AWS emulator) and ``flopsmeter demo``.

Heavy imports (moto, boto3, rich, the handler) happen inside the command functions.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from flopsmeter.errors import FlopsMeterError


def register(sub: Any) -> None:
    """Add ``local`` and ``demo`` to the flopsmeter parser."""
    local = sub.add_parser("local", help="run the service on an embedded local AWS emulator (moto; no account)")
    local.add_argument(
        "--state-dir", default=".local", type=Path, help="where emulator.json and the logs live (default: .local)"
    )
    cmds = local.add_subparsers(dest="local_command", metavar="SUBCOMMAND")

    up = cmds.add_parser("up", help="start the emulator in the background and provision the stack's resources")
    up.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    up.add_argument("--region", default="us-east-1")
    up.set_defaults(func=cmd_up)

    down = cmds.add_parser("down", help="stop the background emulator (its state is lost: it lives in memory)")
    down.set_defaults(func=cmd_down)

    status = cmds.add_parser("status", help="is it running; endpoint, resources, queue depths, records")
    status.set_defaults(func=cmd_status)

    replay = cmds.add_parser("replay", help="put an EventBridge event on the bus and run the real classifier")
    replay.add_argument(
        "event",
        nargs="?",
        type=Path,
        help="EventBridge event JSON (e.g. an example from the AWS docs); default: the AWS docs' "
        "SageMaker Training Job State Change example",
    )
    replay.add_argument(
        "--no-register",
        action="store_true",
        help="do not register the event's job (training job, Bedrock job, training session, Batch service job) in "
        "the emulator when it is missing",
    )
    replay.set_defaults(func=cmd_replay)

    digest = cmds.add_parser("digest", help="write a signed, hash-chained digest of the audit bucket now")
    digest.set_defaults(func=cmd_digest)
    local.set_defaults(func=lambda args: _help(local))

    demo = sub.add_parser("demo", help="the product's main job end to end on the local emulator (a few minutes)")
    demo.add_argument(
        "--skip-training",
        action="store_true",
        help="do not run the tiny fine-tuning (that job is then classified on its hardware ceiling)",
    )
    demo.add_argument("--out", type=Path, help="where the demo leaves its artefacts (.local/demo, .local/demo-org)")
    demo.add_argument(
        "--org",
        action="store_true",
        help="organization mode: two member accounts and a third without the member role (docs/organization.md)",
    )
    demo.set_defaults(func=cmd_demo)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def cmd_up(args: argparse.Namespace) -> int:
    from flopsmeter.local import emulator
    from flopsmeter.local.show import console

    state = emulator.up(args.state_dir, port=args.port, region=args.region)
    out = console()
    out.print(f"[bold]local emulator up[/] at {state.endpoint} (pid {state.pid}, region {state.resources.region})")
    _print_resources(out, state.resources)
    out.print("\nPoint boto3, the AWS CLI and flopsmeter at it (any credentials do):")
    out.print(exports(state.endpoint, state.resources.region), markup=False, highlight=False, soft_wrap=True)
    out.print(f"State: {emulator.state_path(args.state_dir)}; stop with `flopsmeter local down`.")
    return 0


def exports(endpoint: str, region: str) -> str:
    """Shell exports boto3 and the AWS CLI both honour: AWS_ENDPOINT_URL (botocore >= 1.31, AWS CLI >= 2.13),
    AWS_DEFAULT_REGION (boto3 does not read AWS_REGION; the CLI and the other SDKs do: both are set), credentials."""
    return (
        f"export AWS_ENDPOINT_URL={endpoint} AWS_DEFAULT_REGION={region} AWS_REGION={region} "
        "AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing"
    )


def _print_resources(out: Any, resources: Any) -> None:
    from rich.table import Table

    table = Table(title="Provisioned (as the CDK stack does)", show_header=False)
    for label, value in (
        (
            "audit bucket (Object Lock COMPLIANCE, versioned)",
            f"{resources.audit_bucket} ({resources.retention_years} y default retention)",
        ),
        ("classifier queue", resources.queue_url),
        (
            "dead-letter queue",
            f"{resources.dlq_url} (permanent failures at once, with the reason; others after "
            f"{resources.max_receive_count} deliveries)",
        ),
        ("EventBridge rule (default bus)", f"{resources.rule_name}: aws.sagemaker, terminal statuses -> queue"),
        ("alert topic", resources.alert_topic_arn),
        ("digest signing key (RSA_2048 SIGN_VERIFY)", f"{resources.signing_key_alias} ({resources.signing_key_id})"),
    ):
        table.add_row(label, value)
    out.print(table)


def cmd_down(args: argparse.Namespace) -> int:
    from flopsmeter.local import emulator

    pid = emulator.down(args.state_dir)
    print("no local emulator was running" if pid is None else f"local emulator stopped (pid {pid})")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from flopsmeter.local import emulator
    from flopsmeter.local.clients import client
    from flopsmeter.local.show import console

    try:
        state = emulator.read_state(args.state_dir)
    except emulator.EmulatorNotRunning as err:
        print(f"not running: {err}")
        return 1
    r = state.resources
    out = console()
    out.print(f"[bold]running[/] at {state.endpoint} (pid {state.pid})")
    _print_resources(out, r)
    sqs, s3 = client("sqs", r.endpoint, r.region), client("s3", r.endpoint, r.region)
    for label, url in (("classifier queue", r.queue_url), ("dead-letter queue", r.dlq_url)):
        a = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )
        out.print(
            f"{label}: {a['Attributes']['ApproximateNumberOfMessages']} visible, "
            f"{a['Attributes']['ApproximateNumberOfMessagesNotVisible']} in flight"
        )
    count = sum(
        p.get("KeyCount", 0)
        for p in s3.get_paginator("list_objects_v2").paginate(Bucket=r.audit_bucket, Prefix="records/")
    )
    out.print(f"audit records: {count}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from flopsmeter.aws.store import AuditStore
    from flopsmeter.local import emulator
    from flopsmeter.local.clients import client
    from flopsmeter.local.replay import DOCS_EXAMPLE, load_event, replay
    from flopsmeter.local.show import attempts_table, console, dead_letters_table, records_table

    state = emulator.read_state(args.state_dir)
    path = args.event or DOCS_EXAMPLE
    event = load_event(path)
    out = console()
    out.print(f"replaying {path} through EventBridge -> SQS -> classifier (emulator {state.endpoint})")
    result = replay(
        state.resources,
        event,
        register_missing=not args.no_register,
        log_path=Path(args.state_dir) / "logs" / "classifier.log",
    )
    for note in result.notes:
        out.print(f"[yellow]note:[/] {note}")
    if result.report.attempts:
        out.print(attempts_table(result.report.attempts))
    r = state.resources
    store = AuditStore(client("s3", r.endpoint, r.region), r.audit_bucket)
    records = [store.get_record(k) for k in result.record_keys]
    if records:
        out.print(records_table(records))
        for key in result.record_keys:
            out.print(f"record: s3://{r.audit_bucket}/{key}")
    reasons = {a.message_id: a.reason or "" for a in result.report.failed}
    handled = {a.message_id for a in result.report.attempts if a.dead_lettered} | set(reasons)
    mine = [
        d for d in result.report.dead_lettered if d["message_id"] in handled or d.get("source_message_id") in handled
    ]
    if mine:
        out.print(dead_letters_table(mine, reasons))
    out.print(f"classifier log: {Path(args.state_dir) / 'logs' / 'classifier.log'}")
    if result.matched_rule and not records and not mine:
        raise FlopsMeterError("the event was delivered but no record was written; see the classifier log")
    return 0


def cmd_digest(args: argparse.Namespace) -> int:
    from flopsmeter.aws.kms import KmsSigner
    from flopsmeter.aws.store import AuditStore
    from flopsmeter.local import emulator
    from flopsmeter.local.clients import client
    from flopsmeter.service.digests import write_digest

    state = emulator.read_state(args.state_dir)
    r = state.resources
    store = AuditStore(client("s3", r.endpoint, r.region), r.audit_bucket)
    results = write_digest(
        store,
        KmsSigner(client("kms", r.endpoint, r.region), r.signing_key_id),
        account_id=r.account_id,
        region=r.region,
    )
    for d in results:
        print(
            f"{'wrote' if d.written else 'exists'} s3://{r.audit_bucket}/{d.key}: {d.record_count} record "
            f"version(s) up to {d.period_end:%Y-%m-%d %H:%M:%S}Z, sha256 {d.sha256[:16]}…"
        )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if args.org:
        from flopsmeter.local.demo_org import run_org_demo

        return int(run_org_demo(out_dir=args.out or Path(".local/demo-org")))
    from flopsmeter.cli.extras import install_hint, training_available
    from flopsmeter.local.demo import run_demo

    train = not args.skip_training
    if train and not training_available():
        print(
            "note: torch, transformers or peft is not installed, so the tiny metered fine-tuning is skipped and its "
            f"job is classified on its hardware ceiling; to run it: {install_hint('local,training')} (a CPU-only "
            "torch is enough: README, Install)"
        )
        train = False
    return int(run_demo(out_dir=args.out or Path(".local/demo"), train=train))
