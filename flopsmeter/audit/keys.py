"""S3 key layout of the audit bucket: the one place that builds and parses its keys.

Records: ``records/v1/account=<id>/region=<r>/date=<YYYY-MM-DD>/<job>.json``, derived from the job alone, so
redelivery writes the same key; an Amazon Bedrock model customization job's record is ``…/bedrock.<job>.json``
(no SageMaker job name has a ".", so the two services' jobs never share a key). Digests:
``digests/v1/account=<id>/region=<r>/YYYY/MM/DD/HH.json`` for the hourly digest of hour HH (covering up to
HH+1h), ``…/YYYY/MM/DD/hh-mmss.json`` for an on-demand digest ending at hh:mm:ss; key order is chronological
order. The signing key's public half: ``digests/v1/public-keys/<sha256 of the DER>.pem``. Lineage index (issue
18): ``index/v1/artifacts/<sha256 of the normalised S3 location>/<job end, YYYYMMDDTHHMMSSZ>-<job>.json`` (one
object per job that wrote there, so a checkpoint prefix several jobs resumed from keeps each writer, in time
order), ``index/v1/model-packages/<sha256 of the package ARN>.json`` and ``index/v1/jobs/<sha256 of the job
ARN>.json``. Compacted (Parquet) copies of one date partition of records, generation N:
``compacted/v1/account=<id>/region=<r>/date=<YYYY-MM-DD>/gen-NNNNNN/`` (the data objects) and
``…/date=<YYYY-MM-DD>/manifest-NNNNNN.json`` (what they hold); a later generation supersedes an earlier one.
Provenance (capture at launch): ``provenance/v1/account=<id>/region=<r>/<kind>/<name>.json``.
SageMaker HyperPod (issue 26): a reported job's record is ``records/…/date=<end>/hyperpod.<cluster>.<job id>.json``;
a cluster's period comparison is ``clusters/v1/account=<id>/region=<r>/date=<YYYY-MM-DD>/<cluster>.json``.
Every builder has a parser that gives back the same parts (tests/unit/audit/test_keys.py,
tests/unit/audit/test_index_keys.py).

Issue 23 adds ``index/v1/contains/<sha256 of a prefix>/<job end>-<job>.json`` (a job wrote somewhere under that
prefix), ``index/v1/reads/<sha256 of a location>/<job start>-<job>.json`` (a job read exactly there) and
``index/v1/reads-under/<sha256 of a prefix>/<job start>-<job>.json`` (a job read somewhere under it), so a parent
recorded late finds the children that read its artifacts. An addendum (a re-assessment of a recorded job, issue 23)
sits beside its original: ``…/<job>.addendum-<16 hex>.json`` (the hex digests the ancestors it counts).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime, timedelta

RECORDS_PREFIX = "records/v1/"
DIGESTS_PREFIX = "digests/v1/"
PUBLIC_KEYS_PREFIX = f"{DIGESTS_PREFIX}public-keys/"
COMPACTED_PREFIX = "compacted/v1/"
_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")  # SageMaker's own TrainingJobName pattern
# Bedrock API reference, CreateModelCustomizationJob jobName: 1-63 characters.
_BEDROCK_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9+\-.]){0,62}$")
BEDROCK_RECORD_PREFIX = "bedrock."
_RECORD_KEY = re.compile(r"^records/v1/account=([^/]+)/region=([^/]+)/date=(\d{4}-\d{2}-\d{2})/([^/]+)\.json$")
_DIGEST_KEY = re.compile(
    r"^digests/v1/account=([^/]+)/region=([^/]+)/(\d{4})/(\d{2})/(\d{2})/(\d{2})(?:-(\d{2})(\d{2}))?\.json$"
)
_PUBLIC_KEY_KEY = re.compile(r"^digests/v1/public-keys/([0-9a-f]{64})\.pem$")
_PARTITION = r"account=([^/]+)/region=([^/]+)/date=(\d{4}-\d{2}-\d{2})"
_COMPACTION_MANIFEST_KEY = re.compile(rf"^compacted/v1/{_PARTITION}/manifest-(\d{{6}})\.json$")
_COMPACTION_DATA_KEY = re.compile(rf"^compacted/v1/{_PARTITION}/gen-(\d{{6}})/([^/]+)$")
_HOUR = timedelta(hours=1)
HYPERPOD_RECORD_PREFIX = "hyperpod."
CLUSTERS_PREFIX = "clusters/v1/"
# HyperPod cluster names (CreateCluster ClusterName) and the job ids the meter may report (Slurm job ids, array tasks
# "123_4", Kubernetes job names without dots): no "." in either, so ``hyperpod.<cluster>.<job>`` parses one way.
_CLUSTER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_HYPERPOD_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_CLUSTER_PERIOD_KEY = re.compile(rf"^clusters/v1/{_PARTITION}/([^/]+)\.json$")
INDEX_PREFIX = "index/v1/"
ARTIFACT_INDEX_PREFIX = f"{INDEX_PREFIX}artifacts/"
MODEL_PACKAGE_INDEX_PREFIX = f"{INDEX_PREFIX}model-packages/"
JOB_INDEX_PREFIX = f"{INDEX_PREFIX}jobs/"
_SINGLE_INDEX_KEY = re.compile(r"^index/v1/(model-packages|jobs)/([0-9a-f]{64})\.json$")
_INDEX_TIME = "%Y%m%dT%H%M%SZ"
CONTAINS_INDEX_PREFIX = f"{INDEX_PREFIX}contains/"
READS_INDEX_PREFIX = f"{INDEX_PREFIX}reads/"
READS_UNDER_INDEX_PREFIX = f"{INDEX_PREFIX}reads-under/"
# Entries filed under one location by a moment and a job: writers (artifacts, contains) and readers (reads, …-under).
_TIMED_INDEX_ROOTS = {
    "artifacts": ARTIFACT_INDEX_PREFIX,
    "contains": CONTAINS_INDEX_PREFIX,
    "reads": READS_INDEX_PREFIX,
    "reads-under": READS_UNDER_INDEX_PREFIX,
}
_TIMED_INDEX_KEY = re.compile(
    r"^index/v1/(artifacts|contains|reads|reads-under)/([0-9a-f]{64})/(\d{8}T\d{6}Z)-([^/]+)\.json$"
)
ADDENDUM_MARK = ".addendum-"
_ADDENDUM_DIGEST = re.compile(r"^[0-9a-f]{16}$")


def valid_job_name(name: str) -> bool:
    return bool(_JOB_NAME.match(name))


def record_key(account_id: str, region: str, end_time: datetime | date, job_name: str) -> str:
    if not valid_job_name(job_name):
        raise ValueError(f"not a SageMaker training job name: {job_name[:80]!r}")
    day = end_time.date() if isinstance(end_time, datetime) else end_time
    return f"{records_prefix(account_id, region, day)}{job_name}.json"


def valid_bedrock_job_name(name: str) -> bool:
    return len(name) <= 63 and bool(_BEDROCK_JOB_NAME.match(name))


def bedrock_record_key(account_id: str, region: str, end_time: datetime | date, job_name: str) -> str:
    """The record key of a Bedrock model customization job (``bedrock.<job>.json`` in the same partitions)."""
    if not valid_bedrock_job_name(job_name):
        raise ValueError(f"not a Bedrock model customization job name: {job_name[:80]!r}")
    day = end_time.date() if isinstance(end_time, datetime) else end_time
    return f"{records_prefix(account_id, region, day)}{BEDROCK_RECORD_PREFIX}{job_name}.json"


SESSION_RECORD_PREFIX = "session."  # issue 26: a SageMaker training session's record (``session.<name>.json``)
BATCH_RECORD_PREFIX = "batch."  # issue 26: an AWS Batch service job's record (``batch.<job id>.json``)
_BATCH_JOB_ID = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,127}$")


def session_record_key(account_id: str, region: str, end_time: datetime | date, session_name: str) -> str:
    """The record key of a training session (its names follow the training job name pattern)."""
    if not valid_job_name(session_name):
        raise ValueError(f"not a SageMaker training session name: {session_name[:80]!r}")
    day = end_time.date() if isinstance(end_time, datetime) else end_time
    return f"{records_prefix(account_id, region, day)}{SESSION_RECORD_PREFIX}{session_name}.json"


def batch_record_key(account_id: str, region: str, end_time: datetime | date, job_id: str) -> str:
    """The record key of an AWS Batch service job, by its job id (a name may repeat; an id does not)."""
    if not _BATCH_JOB_ID.match(job_id):
        raise ValueError(f"not an AWS Batch job id: {job_id[:80]!r}")
    day = end_time.date() if isinstance(end_time, datetime) else end_time
    return f"{records_prefix(account_id, region, day)}{BATCH_RECORD_PREFIX}{job_id}.json"


# A running training session's assessments (issue 26): one immutable object per scheduled pass, and one crossing
# marker written once, the first time a pass finds it over a threshold (``index/v1/sessions/<sha256 of ARN>/``).
SESSION_INDEX_PREFIX = f"{INDEX_PREFIX}sessions/"
SESSION_CROSSING = "crossed.json"


def session_index_prefix(session_arn: str) -> str:
    return f"{SESSION_INDEX_PREFIX}{location_digest(session_arn.lower())}/"


def session_assessment_key(session_arn: str, assessed_at: datetime) -> str:
    """One pass's assessment; key order is time order."""
    return f"{session_index_prefix(session_arn)}{assessed_at.astimezone(UTC):{_INDEX_TIME}}.json"


def session_crossing_key(session_arn: str) -> str:
    return f"{session_index_prefix(session_arn)}{SESSION_CROSSING}"


# An AWS Batch attempt's service job (issue 26): one entry per attempt's training job, written from the service
# job's state-change events, read when the attempt's own record is built (``index/v1/batch-attempts/<sha256>``).
BATCH_ATTEMPT_INDEX_PREFIX = f"{INDEX_PREFIX}batch-attempts/"


def batch_attempt_index_key(training_job_arn: str) -> str:
    return f"{BATCH_ATTEMPT_INDEX_PREFIX}{location_digest(training_job_arn.lower())}.json"


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


# One immutable marker per record once its announcement went out (all steps), or per step (``step="event"``).
NOTIFICATIONS_PREFIX = "notifications/v1/"


def notification_key(of_record: str, step: str | None = None) -> str:
    """Marker key of a record's announcement: every step done (no ``step``), or one step done."""
    if not of_record.startswith(RECORDS_PREFIX):
        raise ValueError(f"not a record key: {of_record[:120]!r}")
    marker = NOTIFICATIONS_PREFIX + of_record.removeprefix(RECORDS_PREFIX)
    return marker if step is None else marker.removesuffix(".json") + f".{step}.json"


def location_digest(location: str) -> str:
    """SHA-256 (hex) of a normalised location (``flopsmeter.domain.lineage.normalise_s3_uri``, or an ARN)."""
    return hashlib.sha256(location.encode()).hexdigest()


def artifact_index_prefix(location: str) -> str:
    """Where the index entries of one normalised S3 location live (one per job that wrote there)."""
    return timed_index_prefix("artifacts", location)


def artifact_index_key(location: str, end_time: datetime, job_name: str) -> str:
    """The index entry saying that ``job_name`` (ended at ``end_time``) wrote at ``location``; key order is
    the writers' end-time order."""
    return timed_index_key("artifacts", location, end_time, job_name)


def parse_artifact_index_key(key: str) -> tuple[str, datetime, str]:
    """``(location digest, job end time, job name)`` of an artifact index key, else ValueError."""
    return parse_timed_index_key(key, "artifacts")


def timed_index_prefix(kind: str, location: str) -> str:
    """Where the ``artifacts``, ``contains``, ``reads`` or ``reads-under`` entries of one location or prefix live."""
    return f"{_TIMED_INDEX_ROOTS[kind]}{location_digest(location)}/"


def timed_index_key(kind: str, location: str, moment: datetime, job_name: str) -> str:
    """One entry: ``artifacts``/``contains`` (moment: the writer's end) or ``reads``/``reads-under`` (the reader's
    start); key order under a location is the moments' order."""
    if not valid_job_name(job_name):
        raise ValueError(f"not a SageMaker training job name: {job_name[:80]!r}")
    return f"{timed_index_prefix(kind, location)}{moment.astimezone(UTC):{_INDEX_TIME}}-{job_name}.json"


def parse_timed_index_key(key: str, kind: str | None = None) -> tuple[str, datetime, str]:
    """``(location digest, moment, job name)`` of an entry key (of ``kind`` when given), else ValueError."""
    m = _TIMED_INDEX_KEY.match(key)
    if not m or not valid_job_name(m.group(4)) or (kind is not None and m.group(1) != kind):
        raise ValueError(f"not {'a' if kind is None else 'an ' + kind} index key: {key!r}")
    return m.group(2), datetime.strptime(m.group(3), _INDEX_TIME).replace(tzinfo=UTC), m.group(4)


def addendum_key(original_key: str, digest: str) -> str:
    """The key of an addendum to the record at ``original_key`` (beside it, so digests and mirrors carry it)."""
    parse_record_key(original_key)
    if ADDENDUM_MARK in original_key or not _ADDENDUM_DIGEST.match(digest):
        raise ValueError(f"not an original record key and ancestry digest: {original_key[:120]!r}, {digest!r}")
    return f"{original_key.removesuffix('.json')}{ADDENDUM_MARK}{digest}.json"


def addenda_prefix(original_key: str) -> str:
    """The prefix under which the addenda of one original record are listed."""
    return f"{original_key.removesuffix('.json')}{ADDENDUM_MARK}"


def original_of(key: str) -> str:
    """The original record's key of an addendum key (a record key is its own original)."""
    stem, mark, _ = key.rpartition(ADDENDUM_MARK)
    return f"{stem}.json" if mark else key


def model_package_index_key(model_package_arn: str) -> str:
    """The index entry of the job that produced this model package (version) ARN."""
    return f"{MODEL_PACKAGE_INDEX_PREFIX}{location_digest(model_package_arn)}.json"


def job_index_key(job_arn: str) -> str:
    """The index entry of a training job by its ARN: its record key (for a parent in another account/region)."""
    return f"{JOB_INDEX_PREFIX}{location_digest(job_arn)}.json"


def parse_index_key(key: str) -> tuple[str, str]:
    """``(kind, digest)`` of a model-package or job index key (kind ``model-packages`` or ``jobs``), else
    ValueError."""
    m = _SINGLE_INDEX_KEY.match(key)
    if not m:
        raise ValueError(f"not a model-package or job index key: {key!r}")
    return m.group(1), m.group(2)


# Provenance (capture at launch): one immutable object per created training job or parent (tuning job, pipeline
# execution, AutoML job): ``provenance/v1/account=<id>/region=<r>/<kind>/<name>.json``, derived from the resource's
# ARN alone, so the writer (from the CloudTrail event) and the reader (from DescribeTrainingJob) meet on one key.
# Names are lowercased, as SageMaker writes them in ARNs; a pipeline execution is ``<pipeline>/<execution id>``.
PROVENANCE_PREFIX = "provenance/v1/"
PROVENANCE_KINDS = (
    "training-job", "hyper-parameter-tuning-job", "pipeline-execution", "automl-job", "training-session",
    "batch-service-job",
)  # fmt: skip
_NAME = r"[a-z0-9](?:-*[a-z0-9]){0,255}"
_PROVENANCE_KEY = re.compile(
    rf"^provenance/v1/account=([0-9]{{12}})/region=([a-z0-9-]+)/({'|'.join(PROVENANCE_KINDS)})/"
    rf"({_NAME}(?:/{_NAME})?)\.json$"
)
_SAGEMAKER_ARN = re.compile(
    rf"^arn:aws[a-z-]*:sagemaker:([a-z0-9-]+):([0-9]{{12}}):"
    rf"(?:(training-job|hyper-parameter-tuning-job|automl-job|training-session)/({_NAME})"
    rf"|pipeline/({_NAME})/execution/({_NAME}))$"
)
# AWS Batch service jobs (issue 26): ``arn:aws:batch:<region>:<account>:service-job/<job id>``.
_BATCH_SERVICE_JOB_ARN = re.compile(rf"^arn:aws[a-z-]*:batch:([a-z0-9-]+):([0-9]{{12}}):service-job/({_NAME})$")


def parse_launch_arn(arn: str) -> tuple[str, str, str, str]:
    """``(account, region, kind, name)`` of a training job, tuning job, AutoML job, pipeline execution, training
    session or AWS Batch service job ARN."""
    batch = _BATCH_SERVICE_JOB_ARN.match(arn.lower())
    if batch:
        return batch.group(2), batch.group(1), "batch-service-job", batch.group(3)
    m = _SAGEMAKER_ARN.match(arn.lower())
    if not m:
        raise ValueError(
            "not a SageMaker training job, tuning job, AutoML job, pipeline execution, training session or AWS Batch "
            f"service job ARN: {arn[:160]!r}"
        )
    region, account, kind, name, pipeline, execution = m.groups()
    if kind is None:
        return account, region, "pipeline-execution", f"{pipeline}/{execution}"
    return account, region, kind, name


def provenance_key(account_id: str, region: str, kind: str, name: str) -> str:
    key = f"{PROVENANCE_PREFIX}account={account_id}/region={region}/{kind}/{name.lower()}.json"
    if not _PROVENANCE_KEY.match(key):
        raise ValueError(f"not a provenance key: {key[:200]!r}")
    return key


def provenance_key_for_arn(arn: str) -> str:
    return provenance_key(*parse_launch_arn(arn))


def parse_provenance_key(key: str) -> dict[str, str]:
    """``{"account": …, "region": …, "kind": …, "name": …}`` for a provenance key, else ValueError."""
    m = _PROVENANCE_KEY.match(key)
    if not m:
        raise ValueError(f"not a provenance key: {key!r}")
    return dict(zip(("account", "region", "kind", "name"), m.groups(), strict=True))


def valid_cluster_name(name: str) -> bool:
    return bool(_CLUSTER_NAME.match(name))


def valid_hyperpod_job_id(job_id: str) -> bool:
    return bool(_HYPERPOD_JOB_ID.match(job_id))


def hyperpod_record_name(cluster: str, job_id: str) -> str:
    """The file name (without ``.json``) of a HyperPod job's record: ``hyperpod.<cluster>.<job id>``."""
    if not valid_cluster_name(cluster) or not valid_hyperpod_job_id(job_id):
        raise ValueError(f"not a HyperPod cluster name and job id: {cluster[:64]!r}, {job_id[:64]!r}")
    return f"{HYPERPOD_RECORD_PREFIX}{cluster}.{job_id}"


def hyperpod_record_key(account_id: str, region: str, end_time: datetime | date, cluster: str, job_id: str) -> str:
    day = end_time.date() if isinstance(end_time, datetime) else end_time
    return f"{records_prefix(account_id, region, day)}{hyperpod_record_name(cluster, job_id)}.json"


def cluster_period_key(account_id: str, region: str, day: date, cluster: str) -> str:
    if not valid_cluster_name(cluster):
        raise ValueError(f"not a HyperPod cluster name: {cluster[:64]!r}")
    return f"{CLUSTERS_PREFIX}account={account_id}/region={region}/date={day.isoformat()}/{cluster}.json"


def parse_cluster_period_key(key: str) -> tuple[str, str, date, str] | None:
    """(account, region, day, cluster) of a cluster period key; None for any other key."""
    match = _CLUSTER_PERIOD_KEY.match(key)
    if match is None:
        return None
    return match.group(1), match.group(2), date.fromisoformat(match.group(3)), match.group(4)


# What the digests seal, per account/region chain: the job records and the HyperPod cluster-period records.
SEALED_PREFIXES = (RECORDS_PREFIX, CLUSTERS_PREFIX)


def sealed_prefixes(account_id: str, region: str) -> tuple[str, ...]:
    """Where one chain's sealed objects live (each prefix of ``SEALED_PREFIXES`` for that account and region)."""
    return tuple(f"{prefix}account={account_id}/region={region}/" for prefix in SEALED_PREFIXES)


def parse_sealed_key(key: str) -> tuple[str, str]:
    """(account, region) of an object the digests seal (a record or a cluster-period record), else ValueError."""
    cluster = parse_cluster_period_key(key)
    if cluster is not None:
        return cluster[0], cluster[1]
    parsed = parse_record_key(key)
    return parsed["account"], parsed["region"]
