"""The only code that reads and writes the audit bucket.

Records are written once: ``If-None-Match: *`` makes the first write win and a redelivery a no-op, and
every object carries Object Lock COMPLIANCE retention. ClientErrors become ``PermanentStoreError`` (or
``TransientStoreError`` when ``flopsmeter.aws.errors`` says retrying can help); code above sees only our errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from flopsmeter.audit.record import AuditRecord
from flopsmeter.aws.errors import is_access_denied, is_conditional_write_conflict, is_not_found, translate
from flopsmeter.errors import InvalidValue, PermanentError, PermanentStoreError, TransientError, TransientStoreError
from flopsmeter.ports import PutResult, StoredObject

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DEFAULT_RETENTION_YEARS = 10  # AI Act Art. 54(3)(b): documentation kept 10 years


def store_error(err: ClientError | BotoCoreError, what: str) -> TransientError | PermanentError:
    return translate(err, what, transient=TransientStoreError, permanent=PermanentStoreError)


class AuditStore:
    """Record store over one S3 bucket (any boto3 S3 client: AWS, the local emulator, moto)."""

    def __init__(self, s3: S3Client, bucket: str, *, retention_years: int = DEFAULT_RETENTION_YEARS) -> None:
        if retention_years < 1:
            raise InvalidValue("retention must be at least one year")
        self.s3 = s3
        self.bucket = bucket
        self.retention_years = retention_years

    def retain_until(self, now: datetime | None = None) -> datetime:
        start = now or datetime.now(UTC)
        return start + timedelta(days=366 * self.retention_years)

    def put_immutable(
        self, key: str, body: bytes, *, content_type: str = "application/json", metadata: dict[str, str] | None = None
    ) -> tuple[bool, str | None, datetime]:
        """Write ``body`` at ``key`` only if nothing is there; COMPLIANCE-locked. Returns (written, version, until)."""
        until = self.retain_until()
        try:
            reply = self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                IfNoneMatch="*",
                ObjectLockMode="COMPLIANCE",
                ObjectLockRetainUntilDate=until,
                ChecksumAlgorithm="SHA256",
                Metadata=metadata or {},
            )
        except ClientError as err:
            if is_conditional_write_conflict(err):
                return False, None, until
            raise store_error(err, f"writing s3://{self.bucket}/{key}") from err
        except BotoCoreError as err:
            raise store_error(err, f"writing s3://{self.bucket}/{key}") from err
        return True, reply.get("VersionId"), until

    def put_record(self, key: str, record: AuditRecord) -> PutResult:
        sealed = record if record.sha256 else record.sealed()
        written, version, until = self.put_immutable(
            key,
            sealed.to_json_bytes(),
            metadata={"sha256": sealed.sha256, "schema-version": str(sealed.schema_version)},
        )
        if not written:  # 412: recorded already. What is stored is reported when it can be read (best effort)
            try:
                existing = self.head(key)
            except PermanentStoreError:
                return PutResult(key, False, None, "", None)
            return PutResult(
                key,
                False,
                existing.get("VersionId"),
                existing.get("Metadata", {}).get("sha256", ""),
                existing.get("ObjectLockRetainUntilDate"),
            )
        return PutResult(key, True, version, sealed.sha256, until)

    def head(self, key: str) -> dict[str, Any]:
        try:
            return dict(self.s3.head_object(Bucket=self.bucket, Key=key))
        except ClientError as err:
            raise store_error(err, f"reading s3://{self.bucket}/{key}") from err
        except BotoCoreError as err:
            raise store_error(err, f"reading s3://{self.bucket}/{key}") from err

    def exists(self, key: str) -> bool:
        """Is an object stored at ``key``? A hint for skipping work, never the guard against a second write.

        A HEAD of a missing key answers 404 only to a caller with ``s3:ListBucket``; otherwise 403. A 403 is therefore
        "unknown", never permanent: the key is looked for by listing (``ListObjectsV2`` with the key as prefix, which
        a grant conditioned on ``s3:prefix`` allows), and if that is refused too the answer is False. Writers use
        ``If-None-Match: *`` (``put_immutable``), so a False for an object that exists costs only a 412.
        """
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if is_not_found(err):
                return False
            if is_access_denied(err):
                return self._listed(key)
            raise store_error(err, f"reading s3://{self.bucket}/{key}") from err
        except BotoCoreError as err:
            raise store_error(err, f"reading s3://{self.bucket}/{key}") from err
        return True

    def _listed(self, key: str) -> bool:
        """Whether ``key`` is listed (the fallback of ``exists`` after a 403); False when listing is refused too."""
        try:
            reply = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=key, MaxKeys=1)
        except ClientError as err:
            if is_access_denied(err):
                return False
            raise store_error(err, f"listing s3://{self.bucket}/{key}") from err
        except BotoCoreError as err:
            raise store_error(err, f"listing s3://{self.bucket}/{key}") from err
        return any(item.get("Key") == key for item in reply.get("Contents", []))

    def get(self, key: str, version_id: str | None = None) -> StoredObject:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            reply = self.s3.get_object(**kwargs)
            body = reply["Body"].read()
        except ClientError as err:
            raise store_error(err, f"reading s3://{self.bucket}/{key}") from err
        except BotoCoreError as err:
            raise store_error(err, f"reading s3://{self.bucket}/{key}") from err
        return StoredObject(key, body, reply.get("VersionId"), reply.get("LastModified"))

    def get_if_exists(self, key: str) -> StoredObject | None:
        """The object at ``key``, or None when there is none (404, or the 403 S3 gives a reader without ListBucket)."""
        try:
            return self.get(key)
        except PermanentStoreError as err:
            cause = err.__cause__
            if isinstance(cause, ClientError) and (is_not_found(cause) or is_access_denied(cause)):
                return None
            raise

    def get_json(self, key: str) -> dict[str, Any]:
        document = json.loads(self.get(key).body)
        if not isinstance(document, dict):
            raise PermanentStoreError(f"s3://{self.bucket}/{key} is not a JSON object")
        return document

    def get_record(self, key: str) -> AuditRecord:
        return AuditRecord.model_validate(self.get_json(key))

    def list_keys(self, prefix: str, *, start_after: str | None = None) -> Iterator[dict[str, Any]]:
        """Yield ``{"Key", "LastModified", "Size", "ETag"}`` for every object under ``prefix``, in key order."""
        paginator = self.s3.get_paginator("list_objects_v2")
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if start_after:
            kwargs["StartAfter"] = start_after
        try:
            for page in paginator.paginate(**kwargs):
                for item in page.get("Contents", []):
                    yield dict(item)
        except ClientError as err:
            raise store_error(err, f"listing s3://{self.bucket}/{prefix}") from err
        except BotoCoreError as err:
            raise store_error(err, f"listing s3://{self.bucket}/{prefix}") from err

    def list_versions(self, prefix: str) -> Iterator[dict[str, Any]]:
        """Every version (and delete marker, with ``IsDeleteMarker``) under ``prefix``."""
        paginator = self.s3.get_paginator("list_object_versions")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for version in page.get("Versions", []):
                    yield dict(version)
                for marker in page.get("DeleteMarkers", []):
                    yield {**marker, "IsDeleteMarker": True}
        except ClientError as err:
            raise store_error(err, f"listing versions of s3://{self.bucket}/{prefix}") from err
        except BotoCoreError as err:
            raise store_error(err, f"listing versions of s3://{self.bucket}/{prefix}") from err
