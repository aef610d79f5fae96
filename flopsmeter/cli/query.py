"""CLI: ``flopsmeter query``: parse the options into a ``QueryRequest``, run the use case once, render the answer
(``flopsmeter.compliance.query.run``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from flopsmeter.cli import options
from flopsmeter.cli.aws_clients import aws_clients


def cmd_query(args: argparse.Namespace) -> int:
    from flopsmeter.compliance.query import AthenaOptions, Preset, QueryRequest, render, run
    from flopsmeter.compliance.query.render import terminal_width

    request = QueryRequest(
        sql=args.sql,
        preset=Preset(
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
        ),
        selection=options.selection_of(args),
        source=options.source_of(args),
        engine=args.engine,
        athena=AthenaOptions(args.workgroup, args.database, args.output_location, args.compacted),
        pull_only=args.pull_only,
        csv=args.format == "csv",
        show_sql=args.show_sql,
        now=options.utcnow(),
        reevaluate_policy=_policy(args),
    )
    answer = run(request, aws_clients(args), notify=lambda note: print(note, file=sys.stderr))
    if answer.csv_text is not None:
        print(answer.csv_text, end="")
    elif answer.result is not None:
        print(render(answer.result, args.format, width=terminal_width()))
    return 0


def _policy(args: argparse.Namespace) -> Any:
    """``--policy`` / ``--policy-file`` (with ``--deadlines``): the policy whose re-evaluation may open clocks."""
    if args.policy is None and args.policy_file is None:
        return None
    from flopsmeter.compliance.errors import InvalidRequest
    from flopsmeter.compliance.reevaluate import resolve_policy

    if args.policy is not None and args.policy_file is not None:
        raise InvalidRequest("give at most one of --policy ID or --policy-file FILE")
    return resolve_policy(args.policy, args.policy_file)


def register(sub: Any) -> None:
    """Add ``query`` to the flopsmeter parser."""
    p = sub.add_parser("query", help="SQL over the audit records (DuckDB locally, or Athena)")
    p.add_argument("sql", nargs="?", help="SQL over the table `records` (default: a preset listing)")
    options.add_source_args(p)
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
        help="Art. 52(1) notification clocks: crossing, due date (two weeks, Reg. 1182/71, Brussels time), days "
        "left, open or overdue",
    )
    p.add_argument("--policy", help="with --deadlines: also the clocks a re-evaluation under this policy id opens")
    p.add_argument("--policy-file", type=Path, help="with --deadlines: the same for a policy file (JSON)")
    p.add_argument(
        "--by-lineage", action="store_true", help="one row per modified model: lineage compute and energy (kWh)"
    )
    p.add_argument("--limit", type=int, help="at most this many rows (a whole number >= 1)")
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
    options.add_account_args(p)
    p.set_defaults(func=cmd_query)
