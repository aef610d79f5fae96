"""A dev stage may be torn down, except what holds the evidence: the locked bucket and its keys stay."""

from __future__ import annotations

import pytest
from aws_cdk import aws_s3 as s3

from tests.infra.conftest import Synthesized, synthesize

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("dev"), stage="dev")


def test_dev_stack_is_named_by_stage(dev: Synthesized) -> None:
    assert dev.stack_name == "FlopsMeter-dev"
    (workgroup,) = dev.of_type("AWS::Athena::WorkGroup").values()
    assert workgroup["Properties"]["Name"] == "flopsmeter-dev"


def test_evidence_is_retained_even_in_dev(dev: Synthesized) -> None:
    locked = [b for b in dev.of_type("AWS::S3::Bucket").values() if b["Properties"].get("ObjectLockEnabled")]
    assert [b["DeletionPolicy"] for b in locked] == ["Retain"]
    for key in dev.of_type("AWS::KMS::Key").values():
        description = key["Properties"]["Description"]
        if "audit" in description or "digest" in description:
            assert key["DeletionPolicy"] == "Retain", description


def test_disposable_parts_are_destroyed_in_dev(dev: Synthesized) -> None:
    for cfn_type in ("AWS::SQS::Queue", "AWS::Logs::LogGroup"):
        for resource in dev.of_type(cfn_type).values():
            assert resource["DeletionPolicy"] == "Delete", cfn_type


def test_cdk_nag_stops_synth_on_an_unacknowledged_finding(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The same app builder, plus one bucket without TLS or access logs: synth must fail and name the rules."""
    from infra.synth import build_app, cdk_json_context
    from tests.infra.conftest import NO_BUNDLING

    tmp = tmp_path_factory.mktemp("nag")
    app, stack = build_app(
        {**cdk_json_context(), **NO_BUNDLING, "stage": "dev"}, outdir=str(tmp / "out"), asset_dir=tmp / "asset"
    )
    s3.Bucket(stack, "Careless")
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = (tmp / "out" / "validation-report.json").read_text()
    assert "AwsSolutions-S1" in report and "AwsSolutions-S10" in report and "Careless" in report
