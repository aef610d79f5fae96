"""Where ``verify`` reads from: the audit bucket itself (``BucketSource``) or a local mirror (``DirSource``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from flopsmeter.audit.digests import load_public_key, parse_iso, public_key_der, public_key_fingerprint
from flopsmeter.audit.keys import (
    COMPACTED_PREFIX,
    DIGESTS_PREFIX,
    SEALED_PREFIXES,
    parse_public_key_object_key,
    public_key_object_key,
)
from flopsmeter.aws.store import AuditStore
from flopsmeter.compliance.errors import InvalidRequest
from flopsmeter.compliance.layout import is_mirror
from flopsmeter.compliance.mirror import key_path, read_manifest
from flopsmeter.errors import AuditStoreError
from flopsmeter.ports import PartitionCatalog

KeyLookup = tuple[Any | None, str]  # (public key or None, how it was found or why not)
MIRRORED_PREFIXES = (*SEALED_PREFIXES, DIGESTS_PREFIX, COMPACTED_PREFIX)


@dataclass(frozen=True)
class PullManifest:
    """What ``pull`` says it copied into a mirror (key -> version id, ETag, write time) and the files there now."""

    objects: dict[str, dict[str, Any]]
    files: frozenset[str]


@dataclass(frozen=True)
class ObjectVersion:
    key: str
    version_id: str | None
    last_modified: datetime | None
    is_latest: bool = True
    is_delete_marker: bool = False


class Source(Protocol):
    description: str
    as_of: datetime | None  # "now" for staleness checks; None: unknown (no check)
    has_versions: bool

    def record_versions(self) -> list[ObjectVersion]: ...

    def digest_keys(self) -> list[str]: ...

    def digest_versions(self) -> list[ObjectVersion]: ...

    def compaction_keys(self) -> list[str]: ...

    def read(self, key: str, version_id: str | None = None) -> bytes | None: ...

    def public_key(self, key_id: str, fingerprint: str) -> KeyLookup: ...

    def pull_manifest(self) -> PullManifest | None: ...

    def served_partitions(self) -> tuple[dict[tuple[str, str, str], str] | None, str]:
        """Where the catalog points each compacted partition, and how it was read (None: not read, and why)."""
        ...

    def location_of(self, prefix: str) -> str:
        """The S3 URI of an object prefix, as the catalog names locations."""
        ...


def _is_public_key(key: str) -> bool:
    """A stored public key (anything else under digests/ is checked as a digest, or reported as unexpected)."""
    try:
        parse_public_key_object_key(key)
    except ValueError:
        return False
    return True


def _supplied_key(path: Path | None) -> tuple[Any, str] | None:
    """The ``--public-key`` file's key and fingerprint; a file that cannot be read or is no public key is refused."""
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InvalidRequest(f"--public-key {path}: cannot read it ({err.strerror or err})") from None
    try:
        key = load_public_key(data)
    except (ValueError, TypeError) as err:
        why = str(err).split(". ")[0]
        raise InvalidRequest(f"--public-key {path} is not a PEM (or DER) public key: {why}") from None
    return key, public_key_fingerprint(public_key_der(key))


def _from_supplied(supplied: tuple[Any, str], fingerprint: str) -> KeyLookup:
    if supplied[1] == fingerprint:
        return supplied[0], "supplied with --public-key"
    return None, f"signed by key {fingerprint[:16]}…, not the supplied public key"


def _stored_copy(body: bytes | None, fingerprint: str) -> Any | None:
    """The public key in a stored PEM when its fingerprint is the one asked for."""
    if body is None or public_key_fingerprint(public_key_der(load_public_key(body))) != fingerprint:
        return None
    return load_public_key(body)


class BucketSource:
    """The audit bucket through an AuditStore; public keys from KMS (or a supplied PEM)."""

    has_versions = True

    def __init__(
        self,
        store: AuditStore,
        *,
        kms: Any = None,
        public_key_file: Path | None = None,
        now: datetime | None = None,
        catalog: PartitionCatalog | None = None,
    ) -> None:
        self.store = store
        self.kms = kms
        self.catalog = catalog
        self.supplied = _supplied_key(public_key_file)
        self.description = f"s3://{store.bucket}"
        self.as_of = now or datetime.now(UTC)
        self._keys: dict[str, KeyLookup] = {}

    def _versions(self, prefix: str) -> list[ObjectVersion]:
        return [
            ObjectVersion(
                v["Key"],
                v.get("VersionId"),
                v["LastModified"].astimezone(UTC),
                bool(v.get("IsLatest")),
                bool(v.get("IsDeleteMarker")),
            )
            for v in self.store.list_versions(prefix)
        ]

    def record_versions(self) -> list[ObjectVersion]:
        return [v for prefix in SEALED_PREFIXES for v in self._versions(prefix)]

    def digest_keys(self) -> list[str]:
        return [o["Key"] for o in self.store.list_keys(DIGESTS_PREFIX) if not _is_public_key(o["Key"])]

    def digest_versions(self) -> list[ObjectVersion]:
        return self._versions(DIGESTS_PREFIX)

    def compaction_keys(self) -> list[str]:
        return [o["Key"] for o in self.store.list_keys(COMPACTED_PREFIX)]

    def pull_manifest(self) -> PullManifest | None:
        return None  # the bucket's own listing is what is there

    def served_partitions(self) -> tuple[dict[tuple[str, str, str], str] | None, str]:
        if self.catalog is None:
            return None, "no catalog given (verify --database DB reads the Glue catalog)"
        return self.catalog.served(), f"Glue catalog {self.catalog.name}"

    def location_of(self, prefix: str) -> str:
        return f"s3://{self.store.bucket}/{prefix}"

    def read(self, key: str, version_id: str | None = None) -> bytes | None:
        try:
            return self.store.get(key, version_id).body
        except AuditStoreError:
            return None

    def public_key(self, key_id: str, fingerprint: str) -> KeyLookup:
        if self.supplied is not None:
            return _from_supplied(self.supplied, fingerprint)
        if fingerprint not in self._keys:
            self._keys[fingerprint] = self._fetch(key_id, fingerprint)
        return self._keys[fingerprint]

    def _fetch(self, key_id: str, fingerprint: str) -> KeyLookup:
        if self.kms is not None:
            try:
                der = bytes(self.kms.get_public_key(KeyId=key_id)["PublicKey"])
            except Exception as err:  # noqa: BLE001 - any KMS failure falls back to the copy in the bucket, said so
                reason = f"KMS GetPublicKey failed ({type(err).__name__})"
            else:
                if public_key_fingerprint(der) == fingerprint:
                    return load_public_key(der), f"from KMS ({key_id})"
                reason = f"KMS key {key_id} has a different public key"
        else:
            reason = "no KMS client"
        key = _stored_copy(self.read(public_key_object_key(fingerprint)), fingerprint)
        if key is not None:
            return key, f"copy stored in the bucket ({reason}); not an independent trust anchor"
        return None, f"public key {fingerprint[:16]}… not available ({reason})"


class DirSource:
    """A local mirror (same key layout as files); versions and write times from its manifest when present."""

    def __init__(self, root: Path, *, public_key_file: Path | None = None) -> None:
        if not root.is_dir():
            raise AuditStoreError(f"{root} is not a directory")
        if not is_mirror(root):
            raise AuditStoreError(
                f"{root} is not a mirror of the audit bucket (expected records/v1/… and digests/v1/… as "
                "`flopsmeter query --bucket B --pull --dir D` makes); a flat folder of records has no digests to "
                "verify against"
            )
        self.root = root
        self.supplied = _supplied_key(public_key_file)
        manifest = read_manifest(root)
        self.objects: dict[str, Any] = dict(manifest.get("objects", {})) if manifest else {}
        self.has_versions = manifest is not None
        self.as_of = parse_iso(manifest["pulled_at"]) if manifest and manifest.get("pulled_at") else None
        self.description = f"{root} (mirror{'' if manifest else ' without manifest: no version ids or write times'})"

    def _keys_under(self, prefix: str, suffix: str = ".json") -> list[str]:
        base = self.root / prefix
        if not base.is_dir():
            return []
        keys: list[str] = []
        for dirpath, _dirs, files in os.walk(base):
            keys.extend(
                Path(dirpath, n).relative_to(self.root).as_posix()
                for n in files
                if n.endswith(suffix) and not n.startswith(".")
            )
        return sorted(keys)

    def record_versions(self) -> list[ObjectVersion]:
        out = []
        for key in (k for prefix in SEALED_PREFIXES for k in self._keys_under(prefix)):
            meta = self.objects.get(key, {})
            modified = parse_iso(meta["last_modified"]) if meta.get("last_modified") else None
            out.append(ObjectVersion(key, meta.get("version_id"), modified))
        return out

    def digest_keys(self) -> list[str]:
        return [k for k in self._keys_under(DIGESTS_PREFIX) if not _is_public_key(k)]

    def digest_versions(self) -> list[ObjectVersion]:
        return []  # a mirror holds current objects only

    def compaction_keys(self) -> list[str]:
        return self._keys_under(COMPACTED_PREFIX, "")

    def served_partitions(self) -> tuple[dict[tuple[str, str, str], str] | None, str]:
        return None, "a mirror has no catalog (verify --bucket B --database DB reads it)"

    def location_of(self, prefix: str) -> str:
        return prefix

    def pull_manifest(self) -> PullManifest | None:
        if not self.has_versions:
            return None
        files = frozenset(k for prefix in MIRRORED_PREFIXES for k in self._keys_under(prefix, ""))
        return PullManifest(self.objects, files)

    def read(self, key: str, version_id: str | None = None) -> bytes | None:
        path = key_path(self.root, key)
        if not path.is_file():
            return None
        known = self.objects.get(key, {}).get("version_id")
        if version_id and known and known != version_id:
            return None
        return path.read_bytes()

    def public_key(self, key_id: str, fingerprint: str) -> KeyLookup:
        if self.supplied is not None:
            return _from_supplied(self.supplied, fingerprint)
        key = _stored_copy(self.read(public_key_object_key(fingerprint)), fingerprint)
        if key is not None:
            return key, (
                "copy in the mirror; not an independent trust anchor: compare its "
                f"fingerprint {fingerprint} with `aws kms get-public-key` or pass --public-key"
            )
        return None, f"public key {fingerprint[:16]}… not in the mirror (pass --public-key)"
