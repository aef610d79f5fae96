"""Lineage nobody has to tag: parents inferred from what a job reads (input channel, checkpoint prefix, model
package, hyper-parameters), the index the classifier writes, declarations winning, and no parent dropped."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from flopsmeter.audit.keys import JOB_INDEX_PREFIX, artifact_index_prefix, model_package_index_key
from flopsmeter.errors import CloudTrailPending, ParentRecordPending, PermanentError, PermanentStoreError
from flopsmeter.ports import MeteredFigures
from flopsmeter.service.classifier import classify_and_record
from flopsmeter.service.dependencies import ClassifyRequest
from tests.support.fakes import ACCOUNT, END, REGION

BUCKET = "s3://ml-artifacts-123"
PACKAGE = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/support-bot/1"
GROUP = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/support-bot"


def run(world, name):
    return classify_and_record(ClassifyRequest(name, "evt-1"), world.deps, world.config)


def job(world, name, flops, *, end=END, hours=2.0, **describe):
    """A terminal job with its CloudTrail event and metered FLOPs; ``describe`` adds DescribeTrainingJob fields."""
    description = world.jobs.add(
        name, end=end, hours=hours, environment=describe.pop("environment", None), tags=describe.pop("tags", None)
    )
    description.setdefault("OutputDataConfig", {"S3OutputPath": f"{BUCKET}/out"})
    description["ModelArtifacts"] = {"S3ModelArtifacts": f"{BUCKET}/out/{name}/output/model.tar.gz"}
    description.update(describe)
    world.trail.add(name)
    world.meter.figures[name] = MeteredFigures(cumulative_flops=flops)
    return description


def channel(uri):
    return [{"ChannelName": "model", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}}}]


def parent_then_child(world, child_fields, *, parent_fields=None):
    job(world, "sft-1", 2.0e22, end=END - timedelta(days=1), **(parent_fields or {}))
    parent = run(world, "sft-1").record
    job(world, "sft-2", 1.5e22, **child_fields)
    return parent, run(world, "sft-2").record


def test_the_classifier_indexes_what_a_job_wrote(world):
    job(world, "sft-1", 1e20, CheckpointConfig={"S3Uri": f"{BUCKET}/ckpt/run-a/"}, OutputModelPackageArn=PACKAGE)
    run(world, "sft-1")
    keys = set(world.store.objects)
    for location in (f"{BUCKET}/out/sft-1/output/model.tar.gz", f"{BUCKET}/out/sft-1", f"{BUCKET}/ckpt/run-a"):
        assert any(k.startswith(artifact_index_prefix(location)) for k in keys), location
    assert model_package_index_key(PACKAGE) in keys
    assert any(k.startswith(JOB_INDEX_PREFIX) for k in keys)
    assert not any(k.startswith(artifact_index_prefix(f"{BUCKET}/out")) for k in keys)  # the shared output root


def test_parent_inferred_from_an_input_channel_naming_its_model_artifact(world):
    parent, record = parent_then_child(world, {"InputDataConfig": channel(f"{BUCKET}/out/sft-1/output/model.tar.gz")})
    assert record.lineage.parent_job == "sft-1" and record.lineage.status == "complete"
    (link,) = record.lineage.parents
    assert (link.source, link.status, link.record_key) == (
        "input_channel",
        "resolved",
        record.lineage.parent_record_key,
    )
    assert link.location == f"{BUCKET}/out/sft-1/output/model.tar.gz"
    assert record.lineage.cumulative_flops == pytest.approx(3.5e22)
    assert parent.outcome == "below" and record.outcome == "exceeds"  # no tag anywhere, and it still adds up


def test_parent_inferred_from_a_folder_under_its_output_prefix(world):
    _, record = parent_then_child(world, {"InputDataConfig": channel(f"{BUCKET}/out/sft-1/output/model/")})
    assert record.lineage.parent_job == "sft-1" and record.lineage.parents[0].source == "input_channel"


def test_parent_inferred_from_a_checkpoint_prefix_it_wrote(world):
    ckpt = {"CheckpointConfig": {"S3Uri": f"{BUCKET}/ckpt/run-a"}}
    _, record = parent_then_child(world, ckpt, parent_fields=ckpt)
    (link,) = record.lineage.parents
    assert (link.job, link.source) == ("sft-1", "checkpoint")
    assert record.lineage.cumulative_flops == pytest.approx(3.5e22)


def test_a_checkpoint_prefix_resumed_three_times_chains_to_the_latest_writer(world):
    ckpt = {"CheckpointConfig": {"S3Uri": f"{BUCKET}/ckpt/run-a"}}
    job(world, "part-1", 1.0e22, end=END - timedelta(days=2), **ckpt)
    run(world, "part-1")
    job(world, "part-2", 1.0e22, end=END - timedelta(days=1), **ckpt)
    assert run(world, "part-2").record.lineage.parent_job == "part-1"
    job(world, "part-3", 1.0e22, **ckpt)
    record = run(world, "part-3").record
    assert record.lineage.parent_job == "part-2" and record.lineage.chain == ["part-1", "part-2"]
    assert record.lineage.cumulative_flops == pytest.approx(3.0e22)  # all three, none skipped


def test_a_writer_that_ended_after_the_job_started_is_not_its_parent(world):
    ckpt = {"CheckpointConfig": {"S3Uri": f"{BUCKET}/ckpt/shared"}}
    job(world, "later", 1e22, end=END - timedelta(minutes=30), **ckpt)  # ended while "early" was running
    run(world, "later")
    job(world, "early", 1e21, **ckpt)  # started END - 2h
    assert run(world, "early").record.lineage.status == "none"


def test_parent_inferred_from_a_hyperparameter_model_path(world):
    fields = {"HyperParameters": {"model_name_or_path": f'"{BUCKET}/out/sft-1/output/model.tar.gz"'}}
    _, record = parent_then_child(world, fields)
    assert record.lineage.parents[0].source == "hyperparameter"


def test_parent_inferred_from_the_source_model_package(world):
    package = {"ModelPackageConfig": {"ModelPackageGroupArn": GROUP, "SourceModelPackageArn": PACKAGE}}
    _, record = parent_then_child(world, package, parent_fields={"OutputModelPackageArn": PACKAGE})
    (link,) = record.lineage.parents
    assert (link.job, link.source, link.location) == ("sft-1", "model_package", PACKAGE)
    assert record.lineage.model_package_group_arn == GROUP
    assert record.lineage.cumulative_flops == pytest.approx(3.5e22)


def test_an_unknown_source_model_package_makes_the_lineage_incomplete(world):
    job(world, "cont-1", 1e20, ModelPackageConfig={"ModelPackageGroupArn": GROUP, "SourceModelPackageArn": PACKAGE})
    record = run(world, "cont-1").record
    assert record.lineage.status == "incomplete" and record.outcome == "approaching"
    assert record.lineage.parents[0].status == "unresolved"
    assert "not produced by a job this audit trail recorded" in record.lineage.incomplete_reasons[0]


def test_an_input_that_no_job_wrote_is_not_a_parent(world):
    job(world, "fresh", 1e20, InputDataConfig=channel(f"{BUCKET}/datasets/chat-v3/"))
    record = run(world, "fresh").record
    assert record.lineage.status == "none" and record.lineage.parents == [] and record.outcome == "below"


def test_a_declared_parent_and_an_inferred_one_are_both_counted(world):
    """Issue 23: a merge declared on one side and read on the other (the old rule dropped the inferred one)."""
    job(world, "other", 3.0e22, end=END - timedelta(days=2))
    run(world, "other")
    fields = {
        "InputDataConfig": channel(f"{BUCKET}/out/sft-1/output/model.tar.gz"),
        "tags": {"flopsmeter:parent-job": "other"},
    }
    _, record = parent_then_child(world, fields)
    assert record.lineage.parent_job == "other"
    assert record.lineage.cumulative_flops == pytest.approx(6.5e22)  # other + sft-1 + own
    assert {(p.job, p.source, p.status) for p in record.lineage.parents} == {
        ("other", "declared", "resolved"),
        ("sft-1", "input_channel", "resolved"),
    }
    assert any(
        "sft-1 (input_channel), which its declared parent(s) leave out: counted too" in w for w in record.warnings
    )


def test_declaring_no_parent_overrides_inference(world):
    fields = {
        "InputDataConfig": channel(f"{BUCKET}/out/sft-1/output/model.tar.gz"),
        "environment": {"FLOPSMETER_PARENT_JOB": "none"},
    }
    _, record = parent_then_child(world, fields)
    assert record.lineage.status == "none" and record.lineage.cumulative_flops == pytest.approx(1.5e22)
    assert [p.status for p in record.lineage.parents if p.job == "sft-1"] == ["overridden"]


def test_an_invalid_declaration_does_not_hide_inferred_parents(world):
    fields = {
        "InputDataConfig": channel(f"{BUCKET}/out/sft-1/output/model.tar.gz"),
        "tags": {"flopsmeter:parent-job": "not a job!"},
    }
    _, record = parent_then_child(world, fields)
    assert record.lineage.status == "incomplete"
    assert record.lineage.cumulative_flops == pytest.approx(3.5e22)  # sft-1 still counted
    assert record.outcome == "exceeds"


def test_a_missing_parent_is_never_zero_and_the_alert_asks_for_a_declaration(world):
    job(world, "orphan", 1e20, tags={"flopsmeter:parent-job": "deleted-parent"})
    record = run(world, "orphan").record
    assert record.lineage.status == "incomplete" and record.lineage.parents[0].status == "unresolved"
    assert {c.outcome for c in record.classifications} == {"approaching"}  # 0.3 % of the threshold on its own
    ((subject, message, _),) = world.publisher.alerts
    assert "orphan approaching, lineage incomplete" in subject
    assert "Lineage INCOMPLETE: parent job deleted-parent does not exist in SageMaker" in message
    assert "flopsmeter:parent-flops" in message and "FLOPSMETER_PARENT_FLOPS" in message


def test_a_declared_parent_flops_stands_in_for_the_missing_parent(world):
    job(world, "orphan", 1e20, tags={"flopsmeter:parent-job": "deleted-parent", "flopsmeter:parent-flops": "4e22"})
    record = run(world, "orphan").record
    assert record.lineage.status == "declared" and record.lineage.declared_parent_flops == 4e22
    assert record.lineage.cumulative_flops == pytest.approx(4.01e22) and record.outcome == "exceeds"
    low = "1e15"
    job(world, "orphan-2", 1e20, tags={"flopsmeter:parent-job": "deleted-parent", "flopsmeter:parent-flops": low})
    assert run(world, "orphan-2").record.outcome == "below"  # a declaration is the user's auditable statement


def test_a_parent_in_another_account_is_read_from_the_job_index_when_this_bucket_holds_its_record(world):
    other = "arn:aws:sagemaker:us-east-1:999988887777:training-job/remote-sft"
    job(world, "child", 1e21, tags={"flopsmeter:parent-job": other})
    record = run(world, "child").record
    assert record.lineage.status == "incomplete"
    assert "in another account or region: no record of it in this audit bucket" in record.lineage.incomplete_reasons[0]


def test_an_incomplete_parent_makes_its_children_incomplete(world):
    job(world, "orphan", 1e20, end=END - timedelta(days=1), tags={"flopsmeter:parent-job": "deleted-parent"})
    run(world, "orphan")
    job(world, "grandchild", 1e20, InputDataConfig=channel(f"{BUCKET}/out/orphan/output/model.tar.gz"))
    record = run(world, "grandchild").record
    assert record.lineage.status == "incomplete" and "own lineage is incomplete" in record.lineage.incomplete_reasons[0]


def test_an_indexed_parent_without_its_record_yet_is_waited_for_then_its_ceiling_stands_in(world):
    world.config = replace(world.config, cloudtrail_max_wait_seconds=6 * 3600)
    job(world, "sft-1", 2e22, end=END - timedelta(hours=2, minutes=30), hours=1)
    del world.trail.hits["sft-1"]  # its CloudTrail event is late: its index entries are written, its record not
    with pytest.raises(CloudTrailPending):
        run(world, "sft-1")
    assert world.store.records() == {}
    job(world, "sft-2", 1e21, InputDataConfig=channel(f"{BUCKET}/out/sft-1/output/model.tar.gz"))
    with pytest.raises(ParentRecordPending):
        run(world, "sft-2")
    world.now = END + timedelta(hours=1, minutes=1)
    record = run(world, "sft-2").record
    (link,) = record.lineage.parents
    assert (link.job, link.status) == ("sft-1", "ceiling") and link.cumulative_flops == pytest.approx(8 * 312e12 * 3600)
    assert record.lineage.status == "incomplete"  # sft-1's own ancestors are unknown


def test_an_index_write_refused_is_permanent_and_no_record_is_written(world):
    job(world, "sft-1", 1e20)
    world.store.faults.add("put_immutable", PermanentStoreError("AccessDenied"))
    with pytest.raises(PermanentError, match="AccessDenied"):  # dead-lettered at once
        run(world, "sft-1")
    assert world.store.records() == {}


def test_too_many_inputs_to_look_up_make_the_lineage_incomplete(world):
    job(world, "wide", 1e20, HyperParameters={f"p{i}": f"{BUCKET}/in/{i}" for i in range(40)})
    record = run(world, "wide").record
    assert record.lineage.status == "incomplete" and "were not looked up" in record.lineage.incomplete_reasons[0]


def test_a_parent_in_another_account_is_read_when_this_bucket_holds_its_record(world):
    from flopsmeter.audit.lineage_index import IndexEntry
    from tests.support.records import make_record

    other = "arn:aws:sagemaker:us-east-1:999988887777:training-job/remote-sft"
    remote_key = "records/v1/account=999988887777/region=us-east-1/date=2026-11-19/remote-sft.json"
    world.store.objects[remote_key] = make_record("remote-sft", flops=2.5e22).to_json_bytes()
    entry = IndexEntry(
        kind="job",
        role="job",
        location=other,
        job_name="remote-sft",
        job_arn=other,
        account_id="999988887777",
        region="us-east-1",
        end_time=END - timedelta(days=1),
        record_key=remote_key,
    )
    world.store.objects[entry.key()] = entry.to_json_bytes()
    job(world, "child", 1e21, tags={"flopsmeter:parent-job": other})
    record = run(world, "child").record
    assert record.lineage.status == "complete" and record.lineage.parent_record_key == remote_key
    assert record.lineage.cumulative_flops == pytest.approx(2.6e22)
