"""S3 key layout of the audit bucket: the one place that builds and parses its keys.

Records: ``records/v1/account=<id>/region=<r>/date=<YYYY-MM-DD>/<job>.json``, derived from the job alone, so
redelivery writes the same key. Digests: ``digests/v1/account=<id>/region=<r>/YYYY/MM/DD/HH.json`` for the
hourly digest of hour HH (covering up to HH+1h), ``…/YYYY/MM/DD/hh-mmss.json`` for an on-demand digest ending
at hh:mm:ss; key order is chronological order. The signing key's public half: ``digests/v1/public-keys/<sha256
of the DER>.pem``. Compacted (Parquet) copies of one date partition of records, generation N:
``compacted/v1/account=<id>/region=<r>/date=<YYYY-MM-DD>/gen-NNNNNN/`` (the data objects) and
``…/date=<YYYY-MM-DD>/manifest-NNNNNN.json`` (what they hold); a later generation supersedes an earlier one.
Every builder has a parser that gives back the same parts (tests/unit/audit/test_keys.py).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

RECORDS_PREFIX = "records/v1/"
DIGESTS_PREFIX = "digests/v1/"
PUBLIC_KEYS_PREFIX = f"{DIGESTS_PREFIX}public-keys/"
COMPACTED_PREFIX = "compacted/v1/"
_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")  # SageMaker's own TrainingJobName pattern
_RECORD_KEY = re.compile(r"^records/v1/account=([^/]+)/region=([^/]+)/date=(\d{4}-\d{2}-\d{2})/([^/]+)\.json$")
_DIGEST_KEY = re.compile(
    r"^digests/v1/account=([^/]+)/region=([^/]+)/(\d{4})/(\d{2})/(\d{2})/(\d{2})(?:-(\d{2})(\d{2}))?\.json$"
)
_PUBLIC_KEY_KEY = re.compile(r"^digests/v1/public-keys/([0-9a-f]{64})\.pem$")
_PARTITION = r"account=([^/]+)/region=([^/]+)/date=(\d{4}-\d{2}-\d{2})"
_COMPACTION_MANIFEST_KEY = re.compile(rf"^compacted/v1/{_PARTITION}/manifest-(\d{{6}})\.json$")
_COMPACTION_DATA_KEY = re.compile(rf"^compacted/v1/{_PARTITION}/gen-(\d{{6}})/([^/]+)$")
_HOUR = timedelta(hours=1)


def valid_job_name(name: str) -> bool:
    return bool(_JOB_NAME.match(name))


def record_key(account_id: str, region: str, end_time: datetime | date, job_name: str) -> str:
    if not valid_job_name(job_name):
        raise ValueError(f"not a SageMaker training job name: {job_name[:80]!r}")
    day = end_time.date() if isinstance(end_time, datetime) else end_time
    return f"{records_prefix(account_id, region, day)}{job_name}.json"


def records_prefix(account_id: str | None = None, region: str | None = None, day: date | None = None) -> str:
    prefix = RECORDS_PREFIX
    if account_id is None:
        return prefix
    prefix += f"account={account_id}/"
    if region is None:
        return prefix
    prefix += f"region={region}/"
    return prefix if day is None else prefix + f"date={day.isoformat()}/"


def parse_record_key(key: str) -> dict[str, str]:
    """``{"account": …, "region": …, "date": …, "job": …}`` for a record key, else ValueError."""
    m = _RECORD_KEY.match(key)
    if not m:
        raise ValueError(f"not a record key: {key!r}")
    return dict(zip(("account", "region", "date", "job"), m.groups(), strict=True))


def chain_prefix(account_id: str, region: str) -> str:
    """Where the digests of one account/region chain live."""
    return f"{DIGESTS_PREFIX}account={account_id}/region={region}/"


def on_demand_digest_key(account_id: str, region: str, end: datetime) -> str:
    """The key of a digest ending at ``end``: the hourly key when ``end`` is on the hour, else ``…/hh-mmss``."""
    end = end.astimezone(UTC)
    if end.minute == end.second == end.microsecond == 0:
        return digest_key(account_id, region, end - _HOUR)
    return f"{chain_prefix(account_id, region)}{end:%Y/%m/%d/%H-%M%S}.json"


def parse_digest_key(key: str) -> tuple[str, str, datetime]:
    """``(account, region, period end)`` of a digest key (``…/HH.json`` ends at HH+1h), else ValueError."""
    m = _DIGEST_KEY.match(key)
    if not m:
        raise ValueError(f"not a digest key: {key!r}")
    account, region, y, mo, d, h, minute, second = m.groups()
    moment = datetime(int(y), int(mo), int(d), int(h), tzinfo=UTC)
    if minute is None:
        return account, region, moment + _HOUR
    return account, region, moment.replace(minute=int(minute), second=int(second))


def parse_chain(key: str) -> tuple[str, str] | None:
    """``(account, region)`` of a digest key, or None when ``key`` is not a chain digest."""
    try:
        account, region, _end = parse_digest_key(key)
    except ValueError:
        return None
    return account, region


def public_key_object_key(fingerprint: str) -> str:
    """Where the public key with this fingerprint (SHA-256 of its DER, lowercase hex) is stored."""
    return f"{PUBLIC_KEYS_PREFIX}{fingerprint}.pem"


def parse_public_key_object_key(key: str) -> str:
    """The fingerprint in a public-key object key, else ValueError."""
    m = _PUBLIC_KEY_KEY.match(key)
    if not m:
        raise ValueError(f"not a public-key key: {key!r}")
    return m.group(1)


def partition_path(account_id: str, region: str, day: date) -> str:
    """``account=<id>/region=<r>/date=<YYYY-MM-DD>``: one date partition, the same in records/ and compacted/."""
    return f"account={account_id}/region={region}/date={day.isoformat()}"


def compaction_manifest_key(account_id: str, region: str, day: date, generation: int) -> str:
    return f"{COMPACTED_PREFIX}{partition_path(account_id, region, day)}/manifest-{generation:06d}.json"


def compaction_data_prefix(account_id: str, region: str, day: date, generation: int) -> str:
    """Where generation ``generation`` of a partition's Parquet objects live (a prefix of their own)."""
    return f"{COMPACTED_PREFIX}{partition_path(account_id, region, day)}/gen-{generation:06d}/"


def parse_compaction_manifest_key(key: str) -> tuple[str, str, date, int]:
    """``(account, region, date, generation)`` of a compaction manifest key, else ValueError."""
    m = _COMPACTION_MANIFEST_KEY.match(key)
    if not m:
        raise ValueError(f"not a compaction manifest key: {key!r}")
    account, region, day, generation = m.groups()
    return account, region, date.fromisoformat(day), int(generation)


def parse_compaction_data_key(key: str) -> tuple[str, str, date, int]:
    """``(account, region, date, generation)`` of an object under a compaction data prefix, else ValueError."""
    m = _COMPACTION_DATA_KEY.match(key)
    if not m:
        raise ValueError(f"not a compacted data key: {key!r}")
    account, region, day, generation, _name = m.groups()
    return account, region, date.fromisoformat(day), int(generation)


def digest_key(account_id: str, region: str, hour: datetime) -> str:
    return f"{DIGESTS_PREFIX}account={account_id}/region={region}/{hour:%Y/%m/%d/%H}.json"
