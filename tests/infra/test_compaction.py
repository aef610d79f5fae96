"""Compaction in the template: the Parquet table's schema follows the record (plus ``_key``), the function gets
exactly the grants its body uses, and the audit bucket's policy is not loosened for it (every write into
``compacted/`` is still conditional and locked; only Athena's staging in the results bucket is unconditional)."""

from __future__ import annotations

import pytest

from flopsmeter.audit.keys import COMPACTED_PREFIX, RECORDS_PREFIX
from flopsmeter.compliance.compaction.athena import CompactionSettings
from flopsmeter.contract import RETENTION_DAYS_PER_YEAR
from infra.constructs.compaction import COMPACTED_ROOT
from infra.glue_schema import record_columns
from tests.infra.policy import Request, denying_statements
from tests.infra.template import (
    RETENTION_YEARS,
    Synthesized,
    allowed,
    audit_bucket,
    bucket_policy,
    role_arn,
    role_of,
    role_statements,
)

pytestmark = pytest.mark.infra


def _tables(synth: Synthesized) -> dict[str, dict]:
    return {
        t["Properties"]["TableInput"]["Name"]: t["Properties"]["TableInput"]
        for t in synth.of_type("AWS::Glue::Table").values()
    }


def test_the_compacted_table_is_parquet_with_the_records_columns_and_their_key(synth: Synthesized) -> None:
    tables = _tables(synth)
    compacted = tables[CompactionSettings().compacted_table]
    records = tables[CompactionSettings().records_table]
    storage = compacted["StorageDescriptor"]
    assert storage["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert storage["InputFormat"].endswith("MapredParquetInputFormat")
    columns = [(c["Name"], c["Type"]) for c in storage["Columns"]]
    assert columns == [("_key", "string"), *record_columns()]  # what UNLOAD writes: _key, then the records' columns
    assert [(c["Name"], c["Type"]) for c in records["StorageDescriptor"]["Columns"]] == columns[1:]
    assert compacted["PartitionKeys"] == records["PartitionKeys"]
    assert "projection.enabled" not in compacted.get("Parameters", {})  # partitions move between generations
    bucket_id, _ = audit_bucket(synth)
    location = storage["Location"]["Fn::Join"][1]
    assert location == ["s3://", {"Ref": bucket_id}, f"/{COMPACTED_PREFIX}"]
    assert synth.template["Outputs"]["GlueCompactedTable"]["Value"] == "records_compacted"


def test_the_compaction_role_reads_records_and_writes_compacted_once(synth: Synthesized) -> None:
    bucket_id, _ = audit_bucket(synth)
    pairs = allowed(role_statements(synth, role_of(synth, "compaction")))
    audit = {(a, r) for a, r in pairs if a.startswith("s3:") and f"<{bucket_id}.Arn>/" in str(r)}
    records, compacted = f"<{bucket_id}.Arn>/{RECORDS_PREFIX.split('/')[0]}/*", f"<{bucket_id}.Arn>/{COMPACTED_ROOT}*"
    assert audit == {
        ("s3:GetObject", records),
        ("s3:GetObject", compacted),
        ("s3:PutObject", compacted),
        ("s3:PutObjectRetention", compacted),
    }
    actions = {a for a, _ in pairs}
    assert {"athena:StartQueryExecution", "glue:UpdatePartition", "glue:BatchCreatePartition"} <= actions
    # Athena's documented permissions for the caller: the source bucket's location, multipart uploads of results.
    assert ("s3:GetBucketLocation", f"<{bucket_id}.Arn>") in pairs
    (results_id,) = {str(r)[1:].split(".")[0] for a, r in pairs if a == "s3:ListBucketMultipartUploads"}
    assert synth.resources[results_id]["Type"] == "AWS::S3::Bucket" and results_id != bucket_id
    assert ("s3:ListMultipartUploadParts", f"<{results_id}.Arn>/*") in pairs
    assert ("s3:AbortMultipartUpload", f"<{results_id}.Arn>/*") in pairs
    assert not actions & {"s3:DeleteObject", "s3:DeleteObjectVersion", "glue:DeleteTable", "glue:UpdateTable"}


def test_only_the_compacted_table_has_its_partitions_changed(synth: Synthesized) -> None:
    statements = role_statements(synth, role_of(synth, "compaction"))
    changing = [s for s in statements if "glue:UpdatePartition" in s["Action"]]
    [statement] = changing
    tables = [r for r in statement["Resource"] if ":table/" in str(r)]
    assert len(tables) == 1 and str(tables[0]).endswith("/records_compacted")


def test_the_bucket_policy_still_wants_conditional_locked_writes_from_compaction(synth: Synthesized) -> None:
    bucket_id, _ = audit_bucket(synth)
    document = bucket_policy(synth, bucket_id)
    role = role_arn(synth, "compaction")
    key = f"<{bucket_id}.Arn>/{COMPACTED_PREFIX}account=1/region=r/date=2026-01-01/gen-000001/part-0"
    base = {"aws:SecureTransport": "true", "s3:ObjectCreationOperation": "true"}
    assert denying_statements(document, Request(role, "s3:PutObject", key, base))  # Athena's kind of write: refused
    conditional = Request(role, "s3:PutObject", key, {**base, "s3:if-none-match": "*"})
    assert not denying_statements(document, conditional)
    locked = {**base, "s3:if-none-match": "*", "s3:object-lock-mode": "COMPLIANCE"}
    locked["s3:object-lock-remaining-retention-days"] = str(RETENTION_DAYS_PER_YEAR * RETENTION_YEARS)
    assert not denying_statements(document, Request(role, "s3:PutObjectRetention", key, locked))
    elsewhere = f"<{bucket_id}.Arn>/records/v1/x.json"
    assert denying_statements(document, Request(role, "s3:PutObjectRetention", elsewhere, locked))
