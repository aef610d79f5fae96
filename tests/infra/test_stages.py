"""A dev stage may be torn down, except what holds the evidence; and cdk-nag stops a careless change.

One synth serves both (a synth costs ~10 s): the dev stage plus one deliberately careless bucket. cdk-nag must
fail that synth; CDK writes the template before the validation report, so the dev assertions read it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import aws_s3 as s3

from tests.infra.template import NO_BUNDLING, Synthesized, event_source

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> tuple[Synthesized, str]:
    from infra.config import cdk_json_context
    from infra.synth import build_app

    tmp = tmp_path_factory.mktemp("dev")
    app, stack = build_app(
        {**cdk_json_context(), **NO_BUNDLING, "stage": "dev"}, outdir=str(tmp / "out"), asset_dir=tmp / "asset"
    )
    s3.Bucket(stack, "Careless")  # no TLS policy, no access logs
    with pytest.raises(RuntimeError) as caught:
        app.synth()
    template = json.loads(Path(tmp / "out" / f"{stack.stack_name}.template.json").read_text())
    return Synthesized(template, tmp / "out", tmp / "asset", stack.stack_name), str(caught.value)


def test_cdk_nag_stops_synth_on_an_unacknowledged_finding(dev: tuple[Synthesized, str]) -> None:
    synth, error = dev
    assert error.startswith("ValidationFailed")
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    findings = {
        (v["ruleName"], c["constructPath"])
        for plugin in report["pluginReports"]
        for v in plugin["violations"]
        for c in v["violatingConstructs"]
    }
    # Exactly the careless bucket's two findings: everything else in the stack is compliant or acknowledged.
    assert findings == {
        ("AwsSolutions-S1", "FlopsMeter-dev/Careless/Resource"),
        ("AwsSolutions-S10", "FlopsMeter-dev/Careless/Resource"),
    }


def test_dev_stack_is_named_by_stage(dev: tuple[Synthesized, str]) -> None:
    synth, _ = dev
    assert synth.stack_name == "FlopsMeter-dev"


def test_workgroup_name_carries_the_stack_id_so_a_redeploy_does_not_collide(dev: tuple[Synthesized, str]) -> None:
    """Issue 12.5: the production workgroup is retained; a stack re-created after a destroy gets a new id."""
    synth, _ = dev
    (workgroup,) = synth.of_type("AWS::Athena::WorkGroup").values()
    stack_id_part = {
        "Fn::Select": [0, {"Fn::Split": ["-", {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}]}]
    }
    assert workgroup["Properties"]["Name"] == {"Fn::Join": ["-", ["flopsmeter-dev", stack_id_part]]}
    assert synth.template["Outputs"]["AthenaWorkGroup"]["Value"] == workgroup["Properties"]["Name"]


def test_dev_results_bucket_is_emptied_on_delete_so_the_stack_can_go(dev: tuple[Synthesized, str]) -> None:
    """Issue 12.5: a disposable stage's query results must not block the stack deletion."""
    synth, _ = dev
    (workgroup,) = synth.of_type("AWS::Athena::WorkGroup").values()
    location = workgroup["Properties"]["WorkGroupConfiguration"]["ResultConfiguration"]["OutputLocation"]
    results_id = location["Fn::Join"][1][1]["Ref"]
    assert synth.resources[results_id]["DeletionPolicy"] == "Delete"
    (emptier,) = synth.of_type("Custom::S3AutoDeleteObjects").values()
    assert emptier["Properties"]["BucketName"] == {"Ref": results_id}
    assert workgroup["Properties"]["RecursiveDeleteOption"] is True


def test_cdk_json_reserves_no_concurrency(dev: tuple[Synthesized, str]) -> None:
    """Issue 12.3: the committed defaults deploy on a new account (no reservation; the event source throttles)."""
    synth, _ = dev
    for fn in synth.of_type("AWS::Lambda::Function").values():
        assert "ReservedConcurrentExecutions" not in fn["Properties"]
    mapping = event_source(synth, "classifier")
    assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 5}


def test_evidence_is_retained_even_in_dev(dev: tuple[Synthesized, str]) -> None:
    synth, _ = dev
    locked = [b for b in synth.of_type("AWS::S3::Bucket").values() if b["Properties"].get("ObjectLockEnabled")]
    assert [b["DeletionPolicy"] for b in locked] == ["Retain"]
    retained_keys = [k for k in synth.of_type("AWS::KMS::Key").values() if k.get("DeletionPolicy") == "Retain"]
    descriptions = sorted(k["Properties"]["Description"] for k in retained_keys)
    assert len(descriptions) == 2 and "audit" in descriptions[0] and "digest" in descriptions[1]


def test_disposable_parts_are_destroyed_in_dev(dev: tuple[Synthesized, str]) -> None:
    synth, _ = dev
    for cfn_type in ("AWS::SQS::Queue", "AWS::Logs::LogGroup"):
        for resource in synth.of_type(cfn_type).values():
            assert resource["DeletionPolicy"] == "Delete", cfn_type
