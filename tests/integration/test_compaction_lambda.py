"""The compaction function on moto: the locked audit bucket, a staging bucket and the Glue catalog are moto's, Athena
is emulated with DuckDB after parsing every statement by Athena's grammar (``tests.support.athena``: moto's Athena
runs no SQL). A scheduled run compacts the settled day, ``verify`` ties the Parquet to the JSON records and the
catalog to the manifests, a re-run changes nothing, a run that crashed before ALTER TABLE is finished by the next,
and a refusal fails the run."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest
from moto import mock_aws

from flopsmeter.aws.glue_catalog import GlueCatalog
from flopsmeter.aws.store import AuditStore
from flopsmeter.compliance.compaction.athena import CompactionSettings, Staging
from flopsmeter.compliance.verify import BucketSource, verify
from flopsmeter.functions import compaction
from flopsmeter.functions.container import CompactionContainer, build_compaction
from flopsmeter.functions.settings import CompactorSettings, SettingsError
from flopsmeter.local.runner import LocalLambdaContext
from tests.support.athena import DATABASE, EmulatedAthena, make_compacted_table
from tests.support.lambda_context import scheduled_event
from tests.support.trail import ACCOUNT, BUCKET, REGION, T0, build_trail

STAGING = "flopsmeter-athena-results-test"
DAY = T0.date().isoformat()
PARTITION = f"account={ACCOUNT}/region={REGION}/date={DAY}"


def context(timeout_s: float = 900.0) -> LocalLambdaContext:
    """The function's context, with the stack's 15-minute timeout."""
    return LocalLambdaContext("flopsmeter-compaction", region=REGION, account_id=ACCOUNT, timeout_s=timeout_s)


@pytest.fixture
def deployed(monkeypatch):
    with mock_aws():
        trail = build_trail(monkeypatch)  # six records on T0's day, in the locked bucket
        trail.s3.create_bucket(Bucket=STAGING, CreateBucketConfiguration={"LocationConstraint": REGION})
        glue = boto3.client("glue", region_name=REGION)
        make_compacted_table(glue)
        athena = EmulatedAthena(trail.s3, BUCKET, glue)
        container = CompactionContainer(
            athena,
            trail.store,
            Staging(AuditStore(trail.s3, STAGING)),
            CompactionSettings(),
            GlueCatalog(glue, DATABASE),
        )
        yield trail, athena, container


def test_a_scheduled_run_compacts_the_settled_day_and_verify_ties_it_to_the_records(deployed) -> None:
    trail, athena, container = deployed
    handler = compaction.handler_for(lambda: container)
    at = T0 + timedelta(days=3)
    trail.clock.set(at)
    result = handler(scheduled_event(at), context())
    assert result["compacted"] == [PARTITION] and result["records"] == len(trail.records) == 6
    data_prefix = f"compacted/v1/{PARTITION}/gen-000001/"
    assert athena.partitions == {(ACCOUNT, REGION, DAY): f"s3://{BUCKET}/{data_prefix}"}
    [data_key] = [o["Key"] for o in trail.store.list_keys(data_prefix)]
    assert trail.s3.head_object(Bucket=BUCKET, Key=data_key)["ObjectLockMode"] == "COMPLIANCE"
    report = verify(BucketSource(trail.store, kms=trail.kms, now=at, catalog=container.catalog), max_digest_age=None)
    assert not report.failures, report.failures
    assert report.compacted_partitions_checked == 1 and report.catalog_partitions_checked == 1

    again = handler(scheduled_event(at + timedelta(hours=6)), context())
    assert again["compacted"] == [] and again["up_to_date"] == 1


def test_a_day_not_yet_settled_is_left_alone(deployed) -> None:
    trail, athena, container = deployed
    at = T0 + timedelta(days=1)
    result = compaction.handler_for(lambda: container)(scheduled_event(at), context())
    assert result["compacted"] == [] and not any(s.startswith("UNLOAD") for s in athena.sql)


def test_records_missing_since_the_last_compaction_fail_the_run(deployed) -> None:
    trail, athena, container = deployed
    handler = compaction.handler_for(lambda: container)
    at = T0 + timedelta(days=3)
    handler(scheduled_event(at), context())

    def without_one(sql):
        columns, rows = athena(sql)
        return columns, rows[1:] if sql.startswith("SELECT account") else rows

    shrunk = CompactionContainer(without_one, container.store, container.staging, container.settings, container.catalog)
    with pytest.raises(compaction.CompactionRefused, match="1 partition"):
        compaction.handler_for(lambda: shrunk)(scheduled_event(at), context())


def test_the_container_is_built_from_the_settings_the_stack_sets() -> None:
    env = {
        "AUDIT_BUCKET_NAME": BUCKET,
        "ATHENA_WORKGROUP": "flopsmeter-prod-1a2b3c4d",
        "GLUE_DATABASE": "flopsmeter_prod",
        "STAGING_BUCKET_NAME": STAGING,
        "COMPACTION_LOOKBACK_DAYS": "3",
    }
    with mock_aws():
        container = build_compaction(
            CompactorSettings.from_env(env), lambda service: boto3.client(service, region_name=REGION)
        )
    assert container.store.bucket == BUCKET and container.staging.store.bucket == STAGING
    assert container.settings.lookback_days == 3 and container.settings.compacted_table == "records_compacted"
    with pytest.raises(SettingsError, match="GLUE_DATABASE"):
        CompactorSettings.from_env({**env, "GLUE_DATABASE": "Not-A-Glue-Name"})
    with pytest.raises(SettingsError, match="ATHENA_WORKGROUP"):
        CompactorSettings.from_env({k: v for k, v in env.items() if k != "ATHENA_WORKGROUP"})


def test_a_run_without_time_for_a_partition_defers_it_to_the_next(deployed) -> None:
    trail, athena, container = deployed
    at = T0 + timedelta(days=3)
    handler = compaction.handler_for(lambda: container)
    result = handler(scheduled_event(at), context(timeout_s=60))  # under the two minutes a partition is given
    assert result["compacted"] == [] and DAY in result["deferred"] and athena.sql == []
    assert handler(scheduled_event(at), context())["compacted"] == [PARTITION]


def test_a_run_that_crashed_before_alter_table_is_finished_by_the_next_and_verify_sees_the_gap(deployed) -> None:
    trail, athena, container = deployed
    at = T0 + timedelta(days=3)
    trail.clock.set(at)
    handler = compaction.handler_for(lambda: container)
    source = BucketSource(trail.store, kms=trail.kms, now=at, catalog=container.catalog)

    def crashing_at(marker: str) -> CompactionContainer:
        def run_sql(sql: str):
            if sql.startswith("ALTER TABLE") and marker in sql:
                raise TimeoutError("the function stopped after writing the manifest")
            return athena(sql)

        return CompactionContainer(run_sql, container.store, container.staging, container.settings, container.catalog)

    with pytest.raises(TimeoutError):  # generation 1's manifest is written, the partition never registered
        compaction.handler_for(lambda: crashing_at("ADD IF NOT EXISTS"))(scheduled_event(at), context())
    assert trail.store.exists(f"compacted/v1/{PARTITION}/manifest-000001.json") and athena.partitions == {}
    report = verify(source, max_digest_age=None)
    assert not report.failures and report.catalog_not_registered == [PARTITION]  # queries read its JSON

    rerun = handler(scheduled_event(at), context())
    assert rerun["compacted"] == [] and rerun["repointed"] == [PARTITION]
    assert athena.partitions == {(ACCOUNT, REGION, DAY): f"s3://{BUCKET}/compacted/v1/{PARTITION}/gen-000001/"}

    trail.write("job-late", T0 + timedelta(hours=5))  # a late record of that day makes generation 2 ...
    trail.clock.set(at)
    with pytest.raises(TimeoutError):  # ... whose run stops before SET LOCATION: the table still serves gen 1
        compaction.handler_for(lambda: crashing_at("SET LOCATION"))(scheduled_event(at), context())
    stale = verify(source, max_digest_age=None)
    [finding] = stale.failures
    assert (finding.object, finding.problem) == (f"compacted/v1/{PARTITION}/manifest-000002.json", "catalog_stale")
    assert "gen-000001" in finding.detail and "1 record" in finding.detail

    again = handler(scheduled_event(at), context())
    assert again["compacted"] == [] and again["repointed"] == [PARTITION]
    assert athena.partitions[(ACCOUNT, REGION, DAY)] == f"s3://{BUCKET}/compacted/v1/{PARTITION}/gen-000002/"
    assert not verify(source, max_digest_age=None).failures
    assert handler(scheduled_event(at), context())["repointed"] == []
