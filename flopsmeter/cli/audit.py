"""CLI commands of the audit trail: verify, query, compact, report, reevaluate.

Each reads the audit bucket (``--bucket``, through ``--endpoint-url`` for the local emulator) or a local
mirror (``--dir``, same key layout; ``flopsmeter query --bucket B --pull --dir D`` makes one). Everything is
read-only. Heavy imports happen inside the command functions.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DEFAULT_CACHE_ROOT = Path(".local/cache")
DEFAULT_REPORT = Path("report.html")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _when(text: str) -> datetime:
    """A date or ISO date-time (UTC when no zone is given), for --from/--to."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date or ISO date-time: {text[:40]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _source_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bucket", help="audit bucket name")
    parser.add_argument(
        "--dir",
        type=Path,
        help="local mirror of the bucket (same key layout); with --bucket: where "
        "to keep the pulled copy (default .local/cache/<bucket>)",
    )
    parser.add_argument("--endpoint-url", help="AWS endpoint (e.g. the local emulator)")
    parser.add_argument("--region", help="AWS region (default: from the environment)")


def _account_args(parser: argparse.ArgumentParser) -> None:
    """Organization mode's filters (docs/organization.md): some accounts, or the accounts of some OUs."""
    parser.add_argument("--account", action="append", default=[], help="only this account (repeatable, or a,b)")
    parser.add_argument("--ou", action="append", default=[], help="only the accounts of this OU (ou-... or r-...)")
    parser.add_argument(
        "--accounts-map",
        type=Path,
        help="JSON {OU id: [account ids]} resolving --ou offline (default: AWS Organizations ListAccountsForParent)",
    )


def _accounts(args: argparse.Namespace) -> frozenset[str] | None:
    """The accounts --account/--ou select, or None for all; a bad value is a usage error."""
    from flopsmeter.cli.main import UsageError
    from flopsmeter.compliance.accounts import AccountFilterError, resolve_accounts

    try:
        return resolve_accounts(
            args.account, args.ou, accounts_map=args.accounts_map, organizations=lambda: _client(args, "organizations")
        )
    except AccountFilterError as err:
        raise UsageError(str(err)) from None


def _client(args: argparse.Namespace, service: str) -> Any:
    import boto3

    return boto3.session.Session().client(service, endpoint_url=args.endpoint_url, region_name=args.region)  # type: ignore[call-overload]


def _store(args: argparse.Namespace) -> Any:
    from flopsmeter.aws.store import AuditStore

    return AuditStore(_client(args, "s3"), args.bucket)


def _local_dir(args: argparse.Namespace, *, pull: bool = True) -> Path:
    """The directory to read: --dir, or a cache of --bucket refreshed incrementally (by key)."""
    from flopsmeter.cli.main import UsageError

    if args.bucket:
        from flopsmeter.compliance.mirror import pull as pull_bucket

        root = args.dir if getattr(args, "dir", None) else DEFAULT_CACHE_ROOT / args.bucket
        if pull:
            stats = pull_bucket(_store(args), root)
            print(
                f"pulled s3://{args.bucket} into {root}: {stats.downloaded} new or changed, {stats.unchanged} "
                f"unchanged, {stats.removed} removed",
                file=sys.stderr,
            )
        return Path(root)
    if args.dir:
        return Path(args.dir)
    raise UsageError("give --bucket BUCKET or --dir DIR")


# ---------------------------------------------------------------------------------------------------------------
# verify


def cmd_verify(args: argparse.Namespace) -> int:
    from flopsmeter.cli.main import UsageError
    from flopsmeter.compliance.accounts import AccountSource
    from flopsmeter.compliance.verify import BucketSource, DirSource, render_text, verify

    accounts = _accounts(args)
    if args.bucket and args.dir:
        raise UsageError("give --bucket BUCKET or --dir DIR, not both (verify reads one of them)")
    if args.bucket:
        source: Any = BucketSource(
            _store(args), kms=_client(args, "kms"), public_key_file=args.public_key, now=utcnow()
        )
    elif args.dir:
        source = DirSource(args.dir, public_key_file=args.public_key)
    else:
        raise UsageError("give --bucket BUCKET or --dir DIR")
    if accounts is not None:
        source = AccountSource(source, accounts)
    max_age = None if args.max_digest_age_hours <= 0 else timedelta(hours=args.max_digest_age_hours)
    report = verify(source, start=args.start, end=args.end, max_digest_age=max_age)
    print(json.dumps(report.to_dict(), indent=1) if args.json else render_text(report))
    return 0 if report.ok else 1


# ---------------------------------------------------------------------------------------------------------------
# query


def cmd_query(args: argparse.Namespace) -> int:
    from flopsmeter.cli.main import UsageError
    from flopsmeter.compliance.query import Preset, preset_sql, render, run_duckdb, run_duckdb_csv

    accounts = _accounts(args)
    preset = Preset(
        exceeding=args.exceeding,
        job=args.job,
        since=args.since,
        by_base_model=args.by_base_model,
        limit=args.limit,
        until=args.until,
        by_principal=args.by_principal,
        by_package_group=args.by_package_group,
        by_sweep=args.by_sweep,
        deadlines=args.deadlines,
        by_lineage=args.by_lineage,
        accounts=tuple(sorted(accounts or ())),
    )
    listing = (args.exceeding, args.job, args.since, args.until, args.by_base_model, args.by_principal)
    uses_preset = any(
        (*listing, args.by_package_group, args.by_sweep, args.deadlines, args.by_lineage, accounts is not None)
    )
    if args.sql and uses_preset:
        raise UsageError(
            "give either SQL or preset options (--exceeding, --job, --since, --until, --by-base-model, "
            "--by-principal, --by-package-group, --by-sweep, --deadlines, --by-lineage, --account, --ou), not both"
        )
    if (args.deadlines or args.by_lineage) and (args.exceeding or args.job or args.since or args.by_base_model):
        raise UsageError("--deadlines and --by-lineage stand alone (no --exceeding, --job, --since, --by-base-model)")
    if (args.deadlines or args.by_lineage) and accounts is not None:
        raise UsageError("--deadlines and --by-lineage cover every account (no --account / --ou)")
    if args.compacted and (args.engine != "athena" or args.sql):
        raise UsageError(
            "--compacted is for the presets on Athena (locally the cache reads compacted files already; in your own "
            "SQL read records_compacted)"
        )
    if args.engine == "athena":
        result = _athena_query(args, preset)
    else:
        sql = args.sql or preset_sql(preset)
        if args.show_sql:
            print(sql, file=sys.stderr)
        root = _local_dir(args, pull=args.bucket is not None)
        if args.pull_only:
            return 0
        text = run_duckdb_csv(root, sql) if args.format == "csv" else None
        if text is not None:
            print(text, end="")
            return 0
        result = run_duckdb(root, sql)
    if args.deadlines:
        from flopsmeter.compliance.query.deadlines import with_days_left

        result = with_days_left(result, utcnow())
    print(render(result, args.format))
    return 0


def _athena_query(args: argparse.Namespace, preset: Any) -> Any:
    """The query on Athena; with ``--compacted`` the preset reads the compacted partitions from Parquet and the
    others from JSON (``flopsmeter.compliance.query.compacted``)."""
    from flopsmeter.aws.athena import AthenaTarget
    from flopsmeter.cli.main import UsageError
    from flopsmeter.compliance.query import preset_sql, run_athena

    if not (args.workgroup and args.database):
        raise UsageError("--engine athena needs --workgroup and --database (stack outputs)")
    target = AthenaTarget(args.workgroup, args.database, args.output_location)
    athena = _client(args, "athena")
    if args.compacted:
        from flopsmeter.compliance.query.compacted import COMBINED, compacted_cte, partitions_sql

        listed = run_athena(athena, partitions_sql(), target)
        sql = compacted_cte(listed.rows) + preset_sql(preset, table=COMBINED, engine="athena")
    else:
        sql = args.sql or preset_sql(preset, engine="athena")
    if args.show_sql:
        print(sql, file=sys.stderr)
    return run_athena(athena, sql, target)


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
    from flopsmeter.cli.main import UsageError
    from flopsmeter.compliance.layout import is_mirror
    from flopsmeter.compliance.report import write_report
    from flopsmeter.compliance.verify import DirSource, verify

    if args.job and (args.start or args.end):
        raise UsageError("give --job NAME or --from/--to, not both")
    if args.documentation:
        return _documentation(args)
    accounts = _accounts(args)
    root = _local_dir(args)
    verification = None
    if not args.no_verify and is_mirror(root):  # a flat folder of records has no digests to verify against
        verification = verify(DirSource(root), max_digest_age=None)
    data = write_report(
        root,
        args.out,
        job=args.job,
        start=args.start,
        end=args.end,
        source=f"s3://{args.bucket}" if args.bucket else str(root),
        verification=verification,
        accounts=accounts,
    )
    if args.job and not data.jobs:
        print(f"flopsmeter: no record for job {args.job!r}", file=sys.stderr)
        return 1
    print(
        f"wrote {args.out} ({len(data.jobs)} job(s); integrity "
        f"{'not checked' if verification is None else 'OK' if verification.ok else 'FAILED'})"
    )
    return 0


def _documentation(args: argparse.Namespace) -> int:
    """``report --documentation --job JOB``: the compute and energy section of one modified model (md + html)."""
    from flopsmeter.cli.main import UsageError
    from flopsmeter.compliance.documentation import write_documentation

    if not args.job:
        raise UsageError("--documentation needs --job JOB (the last job of the modified model's lineage)")
    root = _local_dir(args)
    out = args.out if args.out != DEFAULT_REPORT else Path(f"documentation-{args.job}")
    source = f"s3://{args.bucket}" if args.bucket else str(root)
    markdown, page = write_documentation(root, args.job, out, source=source)
    print(f"wrote {markdown} and {page} (draft: review before filing)")
    return 0


# ---------------------------------------------------------------------------------------------------------------
# reevaluate


def cmd_reevaluate(args: argparse.Namespace) -> int:
    from flopsmeter.cli.main import UsageError
    from flopsmeter.compliance.accounts import only_accounts
    from flopsmeter.compliance.query import Result, render
    from flopsmeter.compliance.reevaluate import read_dir, reevaluate, resolve_policy

    if (args.policy is None) == (args.policy_file is None):
        raise UsageError("give exactly one of --policy ID or --policy-file FILE")
    policy = resolve_policy(args.policy, args.policy_file)
    accounts = _accounts(args)
    run = reevaluate(only_accounts(read_dir(_local_dir(args)), accounts), policy, args.approaching_fraction)
    if args.format == "json":
        print(json.dumps(run.to_dict(), indent=1))
        return 0
    shown = run.results if args.all else run.changes
    columns = ["job", "flops", "pretrain_flops", "decided", "threshold", "ratio", "outcome", "scenario", "changed"]
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
    """Add verify, query, compact, report and reevaluate to the flopsmeter parser."""
    p = sub.add_parser("verify", help="check records and digests: hashes, coverage, chain, signatures")
    _source_args(p)
    p.add_argument("--from", dest="start", type=_when, help="first moment (date or ISO time, UTC) to check")
    p.add_argument("--to", dest="end", type=_when, help="end of the period (exclusive)")
    p.add_argument("--public-key", type=Path, help="PEM public key of the digest signing key (trust anchor)")
    p.add_argument(
        "--max-digest-age-hours",
        type=float,
        default=2.0,
        help="fail when the newest digest is older than this (0: do not check; default 2)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable result")
    _account_args(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("query", help="SQL over the audit records (DuckDB locally, or Athena)")
    p.add_argument("sql", nargs="?", help="SQL over the table `records` (default: a preset listing)")
    _source_args(p)
    p.add_argument("--engine", choices=("duckdb", "athena"), default="duckdb")
    p.add_argument("--exceeding", action="store_true", help="jobs whose primary outcome is 'exceeds'")
    p.add_argument("--job", help="one training job by name")
    p.add_argument("--since", help="jobs that ended on or after this date (UTC)")
    p.add_argument("--until", help="jobs that ended before this date (UTC)")
    p.add_argument("--by-base-model", action="store_true", help="totals per base model")
    p.add_argument(
        "--by-principal",
        action="store_true",
        help="totals per (principal, base model); flags sets of jobs each below but together above the threshold",
    )
    p.add_argument(
        "--by-package-group",
        action="store_true",
        help="totals per model package group; flags sets of jobs each below but together above the threshold",
    )
    p.add_argument(
        "--by-sweep",
        action="store_true",
        help="totals per hyper-parameter tuning sweep and who launched it (trials summed; splitting flagged)",
    )
    p.add_argument(
        "--deadlines",
        action="store_true",
        help="open Art. 52(1) notification clocks: crossing, due date (crossing + 14 days), days left",
    )
    p.add_argument(
        "--by-lineage", action="store_true", help="one row per modified model: lineage compute and energy (kWh)"
    )
    p.add_argument("--limit", type=int, help="at most this many rows")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument(
        "--pull",
        dest="pull_only",
        action="store_true",
        help="with --bucket [--dir D]: only refresh the local mirror (incremental) and stop",
    )
    p.add_argument(
        "--compacted",
        action="store_true",
        help="with --engine athena: read compacted days from records_compacted (Parquet), the others from records",
    )
    p.add_argument("--workgroup", help="Athena workgroup (stack output AthenaWorkGroup)")
    p.add_argument("--database", help="Glue database of the records table")
    p.add_argument("--output-location", help="Athena results location, if the workgroup does not enforce one")
    p.add_argument("--show-sql", action="store_true", help="print the SQL to stderr")
    _account_args(p)
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("compact", help="copy a mirror's records into Parquet per date partition (query at scale)")
    p.add_argument("--dir", type=Path, required=True, help="local mirror of the bucket (records/v1/...)")
    p.add_argument("--settle-days", type=int, default=0, help="leave the newest N days alone (default 0: all)")
    p.set_defaults(func=cmd_compact)

    p = sub.add_parser("report", help="HTML report for a compliance officer")
    _source_args(p)
    p.add_argument("--job", help="one training job")
    p.add_argument("--from", dest="start", type=_when, help="jobs ending on or after (UTC)")
    p.add_argument("--to", dest="end", type=_when, help="jobs ending before (UTC)")
    p.add_argument("--out", type=Path, default=DEFAULT_REPORT)
    p.add_argument(
        "--documentation",
        action="store_true",
        help="with --job: draft the training-compute and energy section of the technical documentation of the "
        "job's modified model (lineage), as Markdown and HTML (default --out documentation-JOB.md/.html)",
    )
    p.add_argument("--no-verify", action="store_true", help="skip the integrity check shown in the report")
    _account_args(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("reevaluate", help="re-classify stored records under another policy (read-only)")
    _source_args(p)
    p.add_argument("--policy", help="a built-in policy id")
    p.add_argument("--policy-file", type=Path, help="JSON of a new ThresholdPolicy (field names as in the code)")
    p.add_argument("--approaching-fraction", type=float, default=0.8)
    p.add_argument("--all", action="store_true", help="list every record, not only changed outcomes")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    _account_args(p)
    p.set_defaults(func=cmd_reevaluate)
