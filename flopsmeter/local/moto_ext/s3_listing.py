"""A prefix listing that costs what it returns, as S3's does (emulator performance, not behaviour).

moto 5.2's ``list_objects`` reads every key of the bucket, each through ``_VersionedKeyStore.__getitem__`` in
Python, and only then keeps those under the prefix: about 0.7 µs per key in the bucket for every ListObjectsV2,
whatever the prefix. The service lists small index prefixes (lineage, late parents: about eight per record), so on
a bucket of 20 000 keys each listing took ~16 ms and the load benchmark's emulator spent most of its time there.
After ``patch()`` a listing with a prefix hands moto's own ``list_objects`` a view of the bucket whose keys are
those under the prefix (picked from the key names at C speed, their version lists untouched), so everything moto
does after that - delete markers, delimiters, sorting, markers, truncation - is moto's, on the same keys.
``tests/integration/test_local_moto_s3_listing.py`` compares both on a versioned bucket.
"""

from __future__ import annotations

from typing import Any


class _PrefixedBucket:
    """The bucket as ``list_objects`` reads it: every attribute the bucket's, ``keys`` narrowed to a prefix."""

    def __init__(self, bucket: Any, prefix: str) -> None:
        from moto.s3.utils import _VersionedKeyStore

        store = bucket.keys
        # the names copied first (a write meanwhile cannot break the loop); a key deleted meanwhile is skipped
        picked = ((name, dict.get(store, name)) for name in list(dict.keys(store)) if name.startswith(prefix))
        self.keys = _VersionedKeyStore({name: versions for name, versions in picked if versions})  # lists as they are
        self._bucket = bucket

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bucket, name)


_MOTO: dict[str, Any] = {}  # moto's own list_objects, kept for the comparison test


def moto_list_objects(backend: Any, *args: Any) -> Any:
    """moto's own ``list_objects`` (unpatched), for comparison."""
    from moto.s3.models import S3Backend

    return _MOTO.get("list_objects", S3Backend.list_objects)(backend, *args)


def patch() -> None:
    from moto.s3.models import FakeTableStorageBucket, S3Backend

    moto_list = _MOTO.setdefault("list_objects", S3Backend.list_objects)

    def list_objects(
        self: Any, bucket: Any, prefix: str | None, delimiter: str | None, marker: str | None, max_keys: int | None
    ) -> Any:
        if prefix and not isinstance(bucket, FakeTableStorageBucket):
            bucket = _PrefixedBucket(bucket, prefix)
        return moto_list(self, bucket, prefix, delimiter, marker, max_keys)

    S3Backend.list_objects = list_objects  # type: ignore[method-assign]
