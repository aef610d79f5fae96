"""Options the audit-trail commands share, and the request parts built from them: where the records are
(``--bucket`` / ``--dir`` / ``--endpoint-url`` / ``--region``), which accounts (``--account`` / ``--ou``), and
moments (``--from`` / ``--to``)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from flopsmeter.compliance.accounts import AccountSelection
from flopsmeter.compliance.source import TrailSource


def utcnow() -> datetime:
    return datetime.now(UTC)


def when(text: str) -> datetime:
    """A date or ISO date-time (UTC when no zone is given), for --from/--to."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date or ISO date-time: {text[:40]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def add_source_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bucket", help="audit bucket name")
    parser.add_argument(
        "--dir",
        type=Path,
        help="local mirror of the bucket (same key layout) or a folder of record files; with --bucket: where "
        "to keep the pulled copy (default .local/cache/<bucket>)",
    )
    parser.add_argument("--endpoint-url", help="AWS endpoint (e.g. the local emulator)")
    parser.add_argument("--region", help="AWS region (default: AWS_DEFAULT_REGION, AWS_REGION or your profile's)")


def add_account_args(parser: argparse.ArgumentParser) -> None:
    """Organization mode's filters (docs/organization.md): some accounts, or the accounts of some OUs."""
    parser.add_argument("--account", action="append", default=[], help="only this account (repeatable, or a,b)")
    parser.add_argument("--ou", action="append", default=[], help="only the accounts of this OU (ou-... or r-...)")
    parser.add_argument(
        "--accounts-map",
        type=Path,
        help="JSON {OU id: [account ids]} resolving --ou offline (default: AWS Organizations ListAccountsForParent)",
    )


def source_of(args: argparse.Namespace) -> TrailSource:
    return TrailSource(bucket=args.bucket, dir=args.dir)


def selection_of(args: argparse.Namespace) -> AccountSelection:
    return AccountSelection(tuple(args.account), tuple(args.ou), args.accounts_map)
