"""A local mirror of the audit bucket: same key layout as files, plus a manifest of versions and write times.

``pull`` copies records, digests and compacted partitions, incrementally by key: an object is downloaded only
when its current version id (or ETag) differs from the manifest's. Keys whose current version is a delete marker
are dropped from the mirror, so the mirror shows the bucket as it is (``verify --dir`` then reports the record as
missing). The manifest (``.flopsmeter-mirror.json``) keeps each object's version id and S3 ``LastModified``,
which ``verify --dir`` uses; a directory without one (copied by other means) is still readable.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flopsmeter.audit.keys import COMPACTED_PREFIX, DIGESTS_PREFIX, SEALED_PREFIXES
from flopsmeter.aws.store import AuditStore

MANIFEST_NAME = ".flopsmeter-mirror.json"
PULL_WORKERS = 16


@dataclass(frozen=True)
class PullStats:
    downloaded: int
    unchanged: int
    removed: int
    total: int


def key_path(root: Path, key: str) -> Path:
    """The file for an object key; refuses keys that would leave the mirror directory."""
    parts = key.split("/")
    if key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"refusing unsafe object key {key!r}")
    return root.joinpath(*parts)


def read_manifest(root: Path) -> dict[str, Any] | None:
    path = root / MANIFEST_NAME
    if not path.is_file():
        return None
    document = json.loads(path.read_text())
    return document if isinstance(document, dict) else None


def _write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    tmp = root / (MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(tmp, root / MANIFEST_NAME)


def current_versions(store: AuditStore, prefix: str) -> dict[str, dict[str, Any]]:
    """key -> latest version entry (``IsDeleteMarker`` when the key is deleted)."""
    latest: dict[str, dict[str, Any]] = {}
    for version in store.list_versions(prefix):
        if version.get("IsLatest"):
            latest[version["Key"]] = version
    return latest


def pull(
    store: AuditStore,
    root: Path,
    *,
    prefixes: tuple[str, ...] = (*SEALED_PREFIXES, DIGESTS_PREFIX, COMPACTED_PREFIX),
    now: datetime | None = None,
) -> PullStats:
    """Bring ``root`` up to date with the bucket's current objects under ``prefixes``."""
    root.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(root) or {}
    objects: dict[str, Any] = dict(manifest.get("objects", {}))
    wanted: dict[str, dict[str, Any]] = {}
    for prefix in prefixes:
        wanted.update(current_versions(store, prefix))
    to_fetch = []
    removed = markers = 0
    for key, version in wanted.items():
        path = key_path(root, key)
        if version.get("IsDeleteMarker"):
            markers += 1
            if key in objects or path.exists():
                objects.pop(key, None)
                path.unlink(missing_ok=True)
                removed += 1
            continue
        known = objects.get(key)
        same = (
            known and known.get("version_id") == version.get("VersionId") and known.get("etag") == version.get("ETag")
        )
        if not (same and path.is_file()):
            to_fetch.append((key, version))

    def fetch(item: tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        key, version = item
        stored = store.get(key, version.get("VersionId"))
        path = key_path(root, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_name(f".{path.name}.pulling")
        staged.write_bytes(stored.body)
        modified = version["LastModified"].astimezone(UTC)
        os.utime(staged, (modified.timestamp(), modified.timestamp()))
        os.replace(staged, path)  # a new directory entry: the query cache sees the partition changed
        return key, {
            "version_id": version.get("VersionId"),
            "etag": version.get("ETag"),
            "last_modified": modified.isoformat().replace("+00:00", "Z"),
            "size": len(stored.body),
        }

    with ThreadPoolExecutor(max_workers=PULL_WORKERS) as pool:
        for key, entry in pool.map(fetch, to_fetch):
            objects[key] = entry
    _write_manifest(
        root,
        {
            "bucket": store.bucket,
            "pulled_at": (now or datetime.now(UTC)).astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "objects": objects,
        },
    )
    return PullStats(len(to_fetch), len(wanted) - len(to_fetch) - markers, removed, len(objects))
