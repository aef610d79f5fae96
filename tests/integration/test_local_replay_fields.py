"""``flopsmeter local replay`` keeps every field (issue 26 point 4): a replayed serverless, lineage-child and Bedrock
event writes the record the classifier writes for the same job registered directly.

World A registers each job through the APIs (as the demo does) and classifies it from its state-change event; the
emulator is then reset and world B replays only the events - the full DescribeTrainingJob / GetModelCustomizationJob
shaped ``detail`` that AWS sends, times in epoch milliseconds - through ``replay``. Records must agree on everything
the service derives from the job (identity, base model, FLOPs, classifications, lineage, customization, energy,
obligations, warnings); only what a replay cannot carry differs: the record's time, the EventBridge id and the
CloudTrail provenance of the call that created the job (the emulator's caller, not the event's).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flopsmeter import contract
from flopsmeter.local import moto_ext
from flopsmeter.local.clients import client
from flopsmeter.local.emulator import Emulator
from flopsmeter.local.provision import LocalResources
from flopsmeter.local.replay import replay
from flopsmeter.local.replay_fields import BEDROCK_JOB_READS, TRAINING_JOB_READS
from flopsmeter.local.runner import drain, put_state_change
from tests.support.replay_events import bedrock_event, keys_read, records, training_event

HUB = "arn:aws:sagemaker:{region}:aws:hub-content/SageMakerPublicHub/Model/meta-textgeneration-llama-3-1-8b-instruct"
PARENT, CHILD, SERVERLESS, BEDROCK = "replay-parent", "replay-child", "replay-serverless", "replay-bedrock"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


def _sm(r: LocalResources) -> Any:
    return client("sagemaker", r.endpoint, r.region)


def _register_directly(r: LocalResources, end: datetime) -> None:
    sm = _sm(r)
    role = f"arn:aws:iam::{r.account_id}:role/Training"
    common = {"RoleArn": role, "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
              "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"}}  # fmt: skip
    sm.create_training_job(
        TrainingJobName=PARENT, OutputDataConfig={"S3OutputPath": "s3://replay-out/"},
        ResourceConfig={"InstanceType": "ml.p4d.24xlarge", "InstanceCount": 2, "VolumeSizeInGB": 100},
        Environment={contract.ENV_BASE_MODEL: "meta-llama/Llama-3.1-8B"}, HyperParameters={"epochs": "2"},
        CheckpointConfig={"S3Uri": "s3://replay-ckpt/parent/"}, Tags=[{"Key": "team", "Value": "nlp"}], **common,
    )  # fmt: skip
    _finish(r, PARENT, end - timedelta(hours=5), end - timedelta(hours=3))
    artifact = sm.describe_training_job(TrainingJobName=PARENT)["ModelArtifacts"]["S3ModelArtifacts"]
    channel = {"ChannelName": "model", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": artifact}}}
    sm.create_training_job(
        TrainingJobName=CHILD, OutputDataConfig={"S3OutputPath": "s3://replay-out/"}, InputDataConfig=[channel],
        ResourceConfig={"InstanceType": "ml.g5.12xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
        Environment={contract.ENV_PRETRAIN_FLOPS: "1.2e24"}, Tags=[{"Key": contract.TAG_BASE_MODEL, "Value": "x"}],
        **common,
    )  # fmt: skip
    _finish(r, CHILD, end - timedelta(hours=2), end, final_metrics={contract.STDOUT_METRIC_CUMULATIVE_FLOPS: 4.2e19})
    sm.create_training_job(
        TrainingJobName=SERVERLESS, RoleArn=role, OutputDataConfig={"S3OutputPath": "s3://replay-out/"},
        ServerlessJobConfig={"BaseModelArn": HUB.format(region=r.region) + "/2.8.1", "JobType": "FineTuning",
                             "CustomizationTechnique": "SFT", "Peft": "LORA", "SequenceLength": "4K"},
        ModelPackageConfig={"ModelPackageGroupArn": f"arn:aws:sagemaker:{r.region}:{r.account_id}:"
                                                    "model-package-group/replayed"},
    )  # fmt: skip
    _finish(r, SERVERLESS, end - timedelta(hours=1), end, billable_tokens=90_000_000)
    bedrock = client("bedrock", r.endpoint, r.region)
    bedrock.create_model_customization_job(
        jobName=BEDROCK, customModelName=f"{BEDROCK}-model", roleArn=role, customizationType="FINE_TUNING",
        baseModelIdentifier="meta.llama3-1-8b-instruct-v1:0", hyperParameters={"epochCount": "3"},
        trainingDataConfig={"s3Uri": "s3://replay-data/train.jsonl"}, outputDataConfig={"s3Uri": "s3://replay-out/"},
    )  # fmt: skip
    moto_ext.set_model_customization_job_state(
        BEDROCK,
        moto_ext.CustomizationJobState(status="Completed", end=end),
        account_id=r.account_id,
        region=r.region,
        endpoint=r.endpoint,
    )


def _finish(r: LocalResources, name: str, start: datetime, end: datetime, **reported: Any) -> None:
    moto_ext.set_training_job_state(
        name, moto_ext.JobState(status="InProgress", creation=start - timedelta(minutes=4), start=start),
        account_id=r.account_id, region=r.region, endpoint=r.endpoint,
    )  # fmt: skip
    moto_ext.set_training_job_state(name, moto_ext.JobState(status="Completed", end=end, **reported),
                                    account_id=r.account_id, region=r.region, endpoint=r.endpoint)  # fmt: skip


@pytest.fixture(scope="module")
def worlds(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, dict]:  # type: ignore[type-arg]
    log = tmp_path_factory.mktemp("replay") / "classifier.log"
    names = (PARENT, CHILD, SERVERLESS, BEDROCK)
    emulator.reset()
    a = emulator.provision()
    _register_directly(a, datetime.now(UTC) - timedelta(minutes=5))
    events = [training_event(a, n) for n in (PARENT, CHILD, SERVERLESS)] + [bedrock_event(a, BEDROCK)]
    for event in events:
        put_state_change(a, event)
        drain(a, log_path=log, deadline_s=60)
    direct = records(a, names)
    emulator.reset()
    b = emulator.provision()
    results = {}
    for name, event in zip(names, events, strict=True):
        results[name] = replay(b, json.loads(json.dumps(event)), log_path=log, deadline_s=60)
    return direct, records(b, names), results


@pytest.mark.parametrize("name", [SERVERLESS, CHILD, BEDROCK])
def test_replayed_event_writes_the_record_of_the_job_registered_directly(worlds: tuple, name: str) -> None:  # type: ignore[type-arg]
    direct, replayed, _ = worlds

    assert replayed[name] == direct[name]


def test_the_records_compared_carry_what_each_kind_is_about(worlds: tuple) -> None:  # type: ignore[type-arg]
    _, replayed, _ = worlds
    serverless, child, bedrock = replayed[SERVERLESS], replayed[CHILD], replayed[BEDROCK]

    assert serverless["flops"]["method"] == "estimated" and serverless["customization"]["estimate"]["tokens_known"]
    assert serverless["lineage"]["model_package_group_arn"].endswith("/replayed")
    assert [p["job"] for p in child["lineage"]["parents"]] == [PARENT]
    assert child["lineage"]["parents"][0]["source"] == "input_channel"
    assert child["flops"]["metered_channel"] == "final_metric_data" and child["base_model"]["source"] == "environment"
    assert bedrock["flops"]["method"] == "estimated" and bedrock["customization"]["service"] == "bedrock"


def test_the_replay_says_what_it_registered_and_what_it_assumed(worlds: tuple) -> None:  # type: ignore[type-arg]
    _, _, results = worlds
    serverless, bedrock = results[SERVERLESS].registration, results[BEDROCK].registration

    assert serverless is not None and bedrock is not None
    assert {"ServerlessJobConfig", "BillableTokenCount", "ModelPackageConfig"} <= set(serverless.registered)
    assert "ResourceConfig" in serverless.absent and not serverless.assumed
    assert {"baseModelArn", "hyperParameters", "customizationType", "status"} <= set(bedrock.registered)
    child = results[CHILD].registration
    assert child is not None and {"InputDataConfig", "FinalMetricDataList", "Tags"} <= set(child.registered)
    assert any("registered training job" in note for note in results[CHILD].notes)


def test_a_field_that_does_not_fit_the_api_is_left_out_and_said(emulator: Emulator, tmp_path: Path) -> None:
    emulator.reset()
    r = emulator.provision()
    event = json.loads((Path(contract.__file__).parent / "local/events/aws_docs_training_job_state_change.json")
                       .read_text())  # fmt: skip
    del event["detail"]["RoleArn"]

    result = replay(r, event, log_path=tmp_path / "classifier.log", deadline_s=60)

    reg = result.registration
    assert reg is not None and any(item.startswith("VpcConfig: does not fit") for item in reg.left_out)
    assert any(item.startswith("RoleArn (") for item in reg.assumed)
    assert result.record_keys


def test_the_lists_of_fields_the_service_reads_follow_the_service() -> None:
    package = Path(contract.__file__).parent
    training = set().union(*(keys_read(package / "service" / f, {"job", "description"})
                             for f in ("facts.py", "lineage_io.py")))  # fmt: skip
    bedrock = keys_read(package / "service" / "bedrock.py", {"job"}) | keys_read(
        package / "domain" / "customization.py", {"job"}
    )

    assert {k for k in training if k[:1].isupper()} <= set(TRAINING_JOB_READS)
    assert {k for k in bedrock if k[:1].islower() and k in _bedrock_members()} <= set(BEDROCK_JOB_READS)


def _bedrock_members() -> set[str]:
    import botocore.session

    model = botocore.session.get_session().get_service_model("bedrock")
    return set(model.operation_model("GetModelCustomizationJob").output_shape.members)
