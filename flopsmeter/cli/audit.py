"""CLI commands of the audit trail: verify, compact, report, reevaluate (``query`` is ``flopsmeter.cli.query``).

Each reads the audit bucket (``--bucket``, through ``--endpoint-url`` for the local emulator) or a local
mirror (``--dir``, same key layout; ``flopsmeter query --bucket B --pull --dir D`` makes one). Everything is
read-only. Heavy imports happen inside the command functions.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from flopsmeter.cli.aws_clients import aws_clients
from flopsmeter.cli.options import (
    add_account_args,
    add_source_args,
    selection_of,
    source_of,
    utcnow,
    when,
)
from flopsmeter.compliance.errors import InvalidRequest
from flopsmeter.compliance.source import Aws, LocalTrail, local_trail, pull_note

DEFAULT_REPORT = Path("report.html")
VERIFY_EXIT = {"OK": 0, "FAILED": 1, "UNVERIFIED": 3}  # 3: nothing failed, but not everything is proven yet


def _trail(args: argparse.Namespace, aws: Aws) -> LocalTrail:
    """The directory to read (``--dir``, or the bucket pulled into its cache), saying on stderr what a pull did."""
    source = source_of(args)
    trail = local_trail(source, aws)
    note = pull_note(source, trail)
    if note:
        print(note, file=sys.stderr)
    return trail


# ---------------------------------------------------------------------------------------------------------------
# verify


def cmd_verify(args: argparse.Namespace) -> int:
    from flopsmeter.aws.glue_catalog import GlueCatalog
    from flopsmeter.aws.store import AuditStore
    from flopsmeter.compliance.accounts import AccountSource
    from flopsmeter.compliance.verify import BucketSource, DirSource, render_text, verify

    aws = aws_clients(args)
    accounts = selection_of(args).resolve(aws)
    if args.bucket and args.dir:
        raise InvalidRequest("give --bucket BUCKET or --dir DIR, not both (verify reads one of them)")
    if args.database and not args.bucket:
        raise InvalidRequest("--database reads the catalog of the bucket's compacted table: give --bucket too")
    if args.bucket:
        catalog = GlueCatalog(aws("glue"), args.database, args.compacted_table) if args.database else None
        source: Any = BucketSource(
            AuditStore(aws("s3"), args.bucket),
            kms=aws("kms"),
            public_key_file=args.public_key,
            now=utcnow(),
            catalog=catalog,
        )
    elif args.dir:
        source = DirSource(args.dir, public_key_file=args.public_key)
    else:
        raise InvalidRequest("give --bucket BUCKET or --dir DIR")
    if accounts is not None:
        source = AccountSource(source, accounts)
    max_age = None if args.max_digest_age_hours <= 0 else timedelta(hours=args.max_digest_age_hours)
    report = verify(source, start=args.start, end=args.end, max_digest_age=max_age)
    print(json.dumps(report.to_dict(), indent=1) if args.json else render_text(report))
    return VERIFY_EXIT[report.verdict]


# ---------------------------------------------------------------------------------------------------------------
# compact


def cmd_compact(args: argparse.Namespace) -> int:
    from flopsmeter.compliance.compaction.local import compact_dir

    run = compact_dir(args.dir, settle_days=args.settle_days)
    written = run.written
    print(
        f"compacted {len(written)} partition(s) ({sum(r.rows for r in written)} records), "
        f"{len(run.results) - len(written)} already up to date"
    )
    for partition, why in run.errors:
        print(f"  not compacted: {partition}: {why}", file=sys.stderr)
    return 1 if run.errors else 0


# ---------------------------------------------------------------------------------------------------------------
# report


def cmd_report(args: argparse.Namespace) -> int:
    from flopsmeter.compliance.layout import is_mirror
    from flopsmeter.compliance.report import write_report
    from flopsmeter.compliance.verify import DirSource, verify
    from flopsmeter.compliance.verify.render import verdict_line

    if args.job and (args.start or args.end):
        raise InvalidRequest("give --job NAME or --from/--to, not both")
    if args.documentation:
        return _documentation(args)
    aws = aws_clients(args)
    accounts = selection_of(args).resolve(aws)
    trail = _trail(args, aws)
    root = trail.root
    verification = None
    if not args.no_verify and is_mirror(root):  # a flat folder of records has no digests to verify against
        verification = verify(DirSource(root), max_digest_age=None)
    data = write_report(
        root,
        args.out,
        job=args.job,
        start=args.start,
        end=args.end,
        source=source_of(args).label(root),
        verification=verification,
        accounts=accounts,
    )
    if args.job and not data.jobs:
        print(f"flopsmeter: no record for job {args.job!r}", file=sys.stderr)
        return 1
    integrity = "not checked" if verification is None else verdict_line(verification)
    unreadable = f"; {len(data.errors)} record(s) could not be read, listed in the report" if data.errors else ""
    print(f"wrote {args.out} ({len(data.jobs)} job(s){unreadable}; integrity {integrity})")
    for key, why in data.errors:
        print(f"  left out: {key}: {why}", file=sys.stderr)
    return 1 if data.errors else 0


def _documentation(args: argparse.Namespace) -> int:
    """``report --documentation --job JOB``: the compute and energy section of one modified model (md + html)."""
    from flopsmeter.compliance.documentation import write_documentation

    if not args.job:
        raise InvalidRequest("--documentation needs --job JOB (the last job of the modified model's lineage)")
    root = _trail(args, aws_clients(args)).root
    out = args.out if args.out != DEFAULT_REPORT else Path(f"documentation-{args.job}")
    markdown, page = write_documentation(root, args.job, out, source=source_of(args).label(root))
    print(f"wrote {markdown} and {page} (draft: review before filing)")
    return 0


# ---------------------------------------------------------------------------------------------------------------
# reevaluate


def cmd_reevaluate(args: argparse.Namespace) -> int:
    from flopsmeter.compliance.accounts import only_accounts
    from flopsmeter.compliance.query import Result, render
    from flopsmeter.compliance.reevaluate import read_dir, reevaluate, resolve_policy

    if (args.policy is None) == (args.policy_file is None):
        raise InvalidRequest("give exactly one of --policy ID or --policy-file FILE")
    policy = resolve_policy(args.policy, args.policy_file)
    aws = aws_clients(args)
    accounts = selection_of(args).resolve(aws)
    run = reevaluate(only_accounts(read_dir(_trail(args, aws).root), accounts), policy, args.approaching_fraction)
    if args.format == "json":
        print(json.dumps(run.to_dict(), indent=1))
        return 0
    shown = run.results if args.all else run.changes
    columns = ["job", "flops", "pretrain_flops", "decided", "threshold", "ratio", "outcome", "scenario", "changed",
               "notification_due"]  # fmt: skip
    rows = [
        (
            r.job,
            r.flops,
            r.pretrain_flops,
            f"{r.stored_primary_outcome} ({r.stored_primary_policy})",
            r.threshold,
            r.ratio,
            r.outcome,
            r.scenario,
            "yes" if r.changed else "no",
            (r.obligations or {}).get("notification_due") or "",
        )
        for r in shown
    ]
    print(render(Result(columns, rows, 0.0), args.format))
    if args.format == "table":
        moves = ", ".join(f"{k}: {v}" for k, v in run.transitions().items()) or "none"
        print(
            f"Policy {policy.policy_id}: {len(run.results)} records re-evaluated (stored records untouched), "
            f"{len(run.changes)} change outcome ({moves})."
        )
        for key, why in run.errors:
            print(f"  not re-evaluated: {key}: {why}")
    return 1 if run.errors else 0


# ---------------------------------------------------------------------------------------------------------------


def register(sub: Any) -> None:
    """Add verify, compact, report and reevaluate to the flopsmeter parser."""
    p = sub.add_parser(
        "verify",
        help="check records and digests: hashes, coverage, chain, signatures (exit 0 OK, 1 FAILED, 3 UNVERIFIED)",
    )
    add_source_args(p)
    p.add_argument("--from", dest="start", type=when, help="first moment (date or ISO time, UTC) to check")
    p.add_argument("--to", dest="end", type=when, help="end of the period (exclusive)")
    p.add_argument("--public-key", type=Path, help="PEM public key of the digest signing key (trust anchor)")
    p.add_argument(
        "--max-digest-age-hours",
        type=float,
        default=2.0,
        help="fail when the newest digest is older than this (0: do not check; default 2)",
    )
    p.add_argument(
        "--database",
        help="with --bucket: the stack's Glue database (output GlueDatabase); checks that Athena serves each "
        "compacted partition's newest generation",
    )
    p.add_argument("--compacted-table", default="records_compacted", help="the compacted table (default %(default)s)")
    p.add_argument("--json", action="store_true", help="machine-readable result")
    add_account_args(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("compact", help="copy a mirror's records into Parquet per date partition (query at scale)")
    p.add_argument("--dir", type=Path, required=True, help="local mirror of the bucket (records/v1/...)")
    p.add_argument("--settle-days", type=int, default=0, help="leave the newest N days alone (default 0: all)")
    p.set_defaults(func=cmd_compact)

    p = sub.add_parser("report", help="HTML report for a compliance officer")
    add_source_args(p)
    p.add_argument("--job", help="one training job")
    p.add_argument("--from", dest="start", type=when, help="jobs ending on or after (UTC)")
    p.add_argument("--to", dest="end", type=when, help="jobs ending before (UTC)")
    p.add_argument("--out", type=Path, default=DEFAULT_REPORT)
    p.add_argument(
        "--documentation",
        action="store_true",
        help="with --job: draft the training-compute and energy section of the technical documentation of the "
        "job's modified model (lineage), as Markdown and HTML (default --out documentation-JOB.md/.html)",
    )
    p.add_argument("--no-verify", action="store_true", help="skip the integrity check shown in the report")
    add_account_args(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("reevaluate", help="re-classify stored records under another policy (read-only)")
    add_source_args(p)
    p.add_argument("--policy", help="a built-in policy id")
    p.add_argument("--policy-file", type=Path, help="JSON of a new ThresholdPolicy (field names as in the code)")
    p.add_argument("--approaching-fraction", type=float, default=0.8)
    p.add_argument("--all", action="store_true", help="list every record, not only changed outcomes")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    add_account_args(p)
    p.set_defaults(func=cmd_reevaluate)
