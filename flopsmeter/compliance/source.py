"""Where a compliance command reads the audit trail: the bucket, through a local mirror pulled incrementally, or a
local directory (a mirror or a flat folder of records).

``aws(service)`` makes a boto3 client; the CLI builds it from ``--endpoint-url`` / ``--region`` and the
environment, a test hands in its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flopsmeter.compliance.errors import InvalidRequest

Aws = Callable[[str], Any]  # service name -> boto3 client
DEFAULT_CACHE_ROOT = Path(".local/cache")


@dataclass(frozen=True)
class TrailSource:
    """``--bucket`` and/or ``--dir``: with a bucket, the directory is where its pulled copy is kept."""

    bucket: str | None = None
    dir: Path | None = None

    def label(self, root: Path) -> str:
        """How a report names where its records came from."""
        return f"s3://{self.bucket}" if self.bucket else str(root)


@dataclass(frozen=True)
class LocalTrail:
    """The directory to read, and what a pull from the bucket did (None when nothing was pulled)."""

    root: Path
    pulled: Any = None  # flopsmeter.compliance.mirror.PullStats


def local_trail(source: TrailSource, aws: Aws, *, pull: bool = True) -> LocalTrail:
    """The directory to read: ``--dir``, or a cache of ``--bucket`` refreshed incrementally (by key)."""
    if source.bucket:
        root = source.dir or DEFAULT_CACHE_ROOT / source.bucket
        if not pull:
            return LocalTrail(root)
        from flopsmeter.aws.store import AuditStore
        from flopsmeter.compliance.mirror import pull as pull_bucket

        return LocalTrail(root, pull_bucket(AuditStore(aws("s3"), source.bucket), root))
    if source.dir:
        return LocalTrail(source.dir)
    raise InvalidRequest("give --bucket BUCKET or --dir DIR")


def pull_note(source: TrailSource, trail: LocalTrail) -> str | None:
    """One line saying what a pull did, for stderr; None when nothing was pulled."""
    stats = trail.pulled
    if stats is None:
        return None
    return (
        f"pulled s3://{source.bucket} into {trail.root}: {stats.downloaded} new or changed, {stats.unchanged} "
        f"unchanged, {stats.removed} removed"
    )
