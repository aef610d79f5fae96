"""Encryption everywhere, the Glue table and Athena workgroup, outputs, cdk-nag."""

from __future__ import annotations

import json
from datetime import date

import pytest

from flopsmeter.audit.keys import record_key
from infra.glue_schema import record_columns
from tests.infra.policy import resolve
from tests.infra.template import Synthesized, audit_bucket, glue_table

pytestmark = pytest.mark.infra


def test_every_store_and_channel_is_encrypted(synth: Synthesized) -> None:
    for bucket in synth.of_type("AWS::S3::Bucket").values():
        assert bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    reports = {_id for _id in synth.of_type("AWS::SQS::Queue") if _id.startswith("HyperPod")}
    for queue_id, queue in synth.of_type("AWS::SQS::Queue").items():
        if queue_id in reports:  # SQS-managed keys: a job's role in any account sends without a KMS grant (hyperpod.py)
            assert queue["Properties"]["SqsManagedSseEnabled"] is True
        else:
            assert "KmsMasterKeyId" in queue["Properties"]
    assert len(reports) == 2  # the reports queue and its dead-letter queue
    for topic in synth.of_type("AWS::SNS::Topic").values():
        assert "KmsMasterKeyId" in topic["Properties"]
    for key in synth.of_type("AWS::KMS::Key").values():
        if key["Properties"].get("KeySpec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT":
            assert key["Properties"]["EnableKeyRotation"] is True
    (workgroup,) = synth.of_type("AWS::Athena::WorkGroup").values()
    config = workgroup["Properties"]["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"] == "SSE_KMS"


def test_glue_table_follows_the_record_model_with_flops_as_double(synth: Synthesized) -> None:
    table = glue_table(synth)
    table_input = table["Properties"]["TableInput"]
    columns = {c["Name"]: c["Type"] for c in table_input["StorageDescriptor"]["Columns"]}
    assert list(columns.items()) == record_columns()
    assert "classified_flops:double" in columns["flops"] and "metered:double" in columns["flops"]
    assert "threshold:double" in columns["classifications"] and columns["classifications"].startswith("array<struct<")
    assert "cumulative_flops:double" in columns["lineage"]
    assert columns["job"].startswith("struct<") and columns["warnings"] == "array<string>"
    serde = table_input["StorageDescriptor"]["SerdeInfo"]
    assert serde["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"


def test_glue_partition_projection_matches_the_record_key_layout(synth: Synthesized) -> None:
    table = glue_table(synth)
    table_input = table["Properties"]["TableInput"]
    assert [p["Name"] for p in table_input["PartitionKeys"]] == ["account", "region", "date"]
    params = resolve(table_input["Parameters"])
    assert params["projection.enabled"] == "true" and params["projection.date.format"] == "yyyy-MM-dd"
    bucket_id, _ = audit_bucket(synth)
    key = record_key("123456789012", "eu-west-1", date(2026, 3, 4), "my-job")
    location = params["storage.location.template"]
    expanded = (
        location.replace("${account}", "123456789012")
        .replace("${region}", "eu-west-1")
        .replace("${date}", "2026-03-04")
    )
    assert f"s3://<{bucket_id}>/{key}".startswith(expanded)
    assert f"s3://<{bucket_id}>/{key}".removeprefix(expanded) == "my-job.json"


def test_outputs_name_what_the_cli_and_e2e_tests_need(synth: Synthesized) -> None:
    assert {
        "AuditBucketName",
        "AthenaWorkGroup",
        "AlertTopicArn",
        "GlueDatabase",
        "GlueTable",
        "DigestSigningKeyArn",
        "ClassifierQueueUrl",
        "DeadLetterQueueUrl",
    } <= set(synth.template["Outputs"])


def test_cdk_nag_reports_no_unacknowledged_finding(synth: Synthesized) -> None:
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    violations = [v for plugin in report["pluginReports"] for v in plugin.get("violations", [])]
    assert violations == []


def test_query_results_are_versioned_and_expire(synth: Synthesized) -> None:
    """Issue 12.10: versioning on the results bucket (noncurrent versions go after a day)."""
    (workgroup,) = synth.of_type("AWS::Athena::WorkGroup").values()
    location = workgroup["Properties"]["WorkGroupConfiguration"]["ResultConfiguration"]["OutputLocation"]
    results = synth.resources[location["Fn::Join"][1][1]["Ref"]]["Properties"]
    assert results["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = results["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == 30 and rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}


def test_every_checkov_skip_names_a_check_and_gives_a_reason(synth: Synthesized) -> None:
    skips = [
        (logical_id, skip)
        for logical_id, resource in synth.resources.items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips, "the template carries checkov's skips"
    for logical_id, skip in skips:
        assert set(skip) == {"id", "comment"}, logical_id
        assert skip["id"].startswith("CKV_AWS_") and len(skip["comment"]) >= 40, (logical_id, skip)
