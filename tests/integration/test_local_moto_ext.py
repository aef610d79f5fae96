"""moto gap-fillers (flopsmeter.local.moto_ext): emulated SageMaker job lifecycle and CloudTrail LookupEvents.

Everything here is emulated behaviour: moto 5.2.5 alone marks a job Completed at once, drops Environment and
has no LookupEvents. The same assertions run in-process (mock_aws) and against a ThreadedMotoServer driven
over HTTP, so the service's boto3 code sees one behaviour in both.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.server import ThreadedMotoServer

from flopsmeter.local import moto_ext

REGION = "eu-west-1"


@dataclass
class Emulator:
    endpoint: str | None  # None: in-process mock_aws

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint)


@pytest.fixture(params=["in_process", "server"])
def emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    moto_ext.install()
    if request.param == "in_process":
        with mock_aws():
            yield Emulator(None)
        return
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    # the threaded server shares this process's moto backends: start from a clean account
    urllib.request.urlopen(urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST"), timeout=10)
    try:
        yield Emulator(f"http://{host}:{port}")
    finally:
        server.stop()


def _create_job(sm: Any, name: str, **extra: Any) -> str:
    return str(
        sm.create_training_job(
            TrainingJobName=name,
            AlgorithmSpecification={
                "TrainingImage": "img:1",
                "TrainingInputMode": "File",
                "MetricDefinitions": [{"Name": "flops", "Regex": "flops=(\\S+)"}],
            },
            RoleArn="arn:aws:iam::123456789012:role/SageMakerRole",
            OutputDataConfig={"S3OutputPath": "s3://out/prefix"},
            ResourceConfig={"InstanceType": "ml.p4d.24xlarge", "InstanceCount": 2, "VolumeSizeInGB": 50},
            StoppingCondition={"MaxRuntimeInSeconds": 86400},
            **extra,
        )["TrainingJobArn"]
    )


def test_new_job_is_in_progress_with_its_environment_and_metric_definitions(emulator: Emulator) -> None:
    sm = emulator.client("sagemaker")
    arn = _create_job(
        sm,
        "job-a",
        Environment={"PRETRAIN_FLOPS": "1.5e24"},
        Tags=[{"Key": "flopsmeter:base-model", "Value": "llama-3-70b"}],
    )

    job = sm.describe_training_job(TrainingJobName="job-a")

    assert job["TrainingJobStatus"] == "InProgress"
    assert job["SecondaryStatus"] == "Starting"
    assert "TrainingStartTime" not in job and "TrainingEndTime" not in job
    assert job["Environment"] == {"PRETRAIN_FLOPS": "1.5e24"}
    assert job["AlgorithmSpecification"]["MetricDefinitions"] == [{"Name": "flops", "Regex": "flops=(\\S+)"}]
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "flopsmeter:base-model", "Value": "llama-3-70b"}]


def test_duplicate_job_name_is_refused_like_sagemaker(emulator: Emulator) -> None:
    sm = emulator.client("sagemaker")
    _create_job(sm, "job-dup")
    with pytest.raises(ClientError) as err:
        _create_job(sm, "job-dup")
    assert err.value.response["Error"]["Code"] == "ResourceInUse"


@pytest.mark.parametrize("status", ["Completed", "Failed", "Stopped"])
def test_state_transition_sets_times_and_billable_seconds(emulator: Emulator, status: str) -> None:
    sm = emulator.client("sagemaker")
    _create_job(sm, "job-t")
    start = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    end = start + timedelta(hours=2, seconds=5)

    moto_ext.set_training_job_state(
        "job-t", moto_ext.JobState(status="InProgress", start=start), region=REGION, endpoint=emulator.endpoint
    )
    running = sm.describe_training_job(TrainingJobName="job-t")
    moto_ext.set_training_job_state(
        "job-t",
        moto_ext.JobState(
            status=status,
            end=end,
            billable_seconds=3600,
            failure_reason="OOM" if status == "Failed" else None,
            final_metrics={"flops": 1.25e18},
        ),
        region=REGION,
        endpoint=emulator.endpoint,
    )
    done = sm.describe_training_job(TrainingJobName="job-t")

    assert running["TrainingJobStatus"] == "InProgress" and running["SecondaryStatus"] == "Training"
    assert running["TrainingStartTime"] == start and "TrainingEndTime" not in running
    assert done["TrainingJobStatus"] == status and done["SecondaryStatus"] == status
    assert (done["TrainingStartTime"], done["TrainingEndTime"]) == (start, end)
    assert done["TrainingTimeInSeconds"] == 7205
    assert done["BillableTimeInSeconds"] == 3600
    assert done.get("FailureReason") == ("OOM" if status == "Failed" else None)
    assert done["FinalMetricDataList"][0]["MetricName"] == "flops"
    assert done["FinalMetricDataList"][0]["Value"] == pytest.approx(1.25e18)
    assert [t["Status"] for t in done["SecondaryStatusTransitions"]] == ["Starting", "Training", status]
    listed = sm.list_training_jobs(StatusEquals=status)["TrainingJobSummaries"]
    assert [j["TrainingJobName"] for j in listed] == ["job-t"]


def test_state_of_unknown_job_or_status_is_a_clear_error(emulator: Emulator) -> None:
    sm = emulator.client("sagemaker")
    _create_job(sm, "job-e")
    with pytest.raises(moto_ext.EmulatorError, match="no training job"):
        moto_ext.set_training_job_state(
            "nope", moto_ext.JobState(status="Completed"), region=REGION, endpoint=emulator.endpoint
        )
    with pytest.raises(moto_ext.EmulatorError, match="unknown training job status"):
        moto_ext.set_training_job_state(
            "job-e", moto_ext.JobState(status="Done"), region=REGION, endpoint=emulator.endpoint
        )


def test_create_training_job_is_recorded_in_cloudtrail_with_the_lookup_events_shape(emulator: Emulator) -> None:
    sm, ct = emulator.client("sagemaker"), emulator.client("cloudtrail")
    # Given a caller with an assumed role (moto's STS maps the temporary key back to the role session)
    iam = emulator.client("iam")
    iam.create_role(
        RoleName="MLEngineer", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
    )
    creds = emulator.client("sts").assume_role(
        RoleArn="arn:aws:iam::123456789012:role/MLEngineer", RoleSessionName="alice"
    )["Credentials"]
    as_alice = boto3.client(
        "sagemaker",
        region_name=REGION,
        endpoint_url=emulator.endpoint,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    arn = _create_job(as_alice, "job-ct")
    _create_job(sm, "job-other")

    by_name = ct.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": "job-ct"}])
    by_arn = ct.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": arn}])
    by_event = ct.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateTrainingJob"}])

    [event] = by_name["Events"]
    assert by_arn["Events"] == [event]
    assert [e["Resources"][0]["ResourceName"] for e in by_event["Events"]] == ["job-other", "job-ct"]  # newest first
    detail = json.loads(event["CloudTrailEvent"])
    assert event["EventName"] == detail["eventName"] == "CreateTrainingJob"
    assert event["EventSource"] == "sagemaker.amazonaws.com"
    assert detail["eventID"] == event["EventId"]
    assert detail["userIdentity"]["type"] == "AssumedRole"
    assert detail["userIdentity"]["arn"] == "arn:aws:sts::123456789012:assumed-role/MLEngineer/alice"
    assert detail["userIdentity"]["accessKeyId"] == creds["AccessKeyId"] == event["AccessKeyId"]
    assert detail["sourceIPAddress"] == "127.0.0.1"
    assert detail["userAgent"].startswith("Boto3/")
    assert detail["requestParameters"]["trainingJobName"] == "job-ct"
    assert detail["responseElements"] == {"trainingJobArn": arn}
    created = sm.describe_training_job(TrainingJobName="job-ct")["CreationTime"]
    assert abs((event["EventTime"] - created).total_seconds()) < 1


def test_lookup_events_time_window_and_pagination(emulator: Emulator) -> None:
    sm, ct = emulator.client("sagemaker"), emulator.client("cloudtrail")
    for i in range(5):
        _create_job(sm, f"job-p{i}")
    attrs = [{"AttributeKey": "EventName", "AttributeValue": "CreateTrainingJob"}]

    pages = list(ct.get_paginator("lookup_events").paginate(LookupAttributes=attrs, PaginationConfig={"PageSize": 2}))
    future = ct.lookup_events(LookupAttributes=attrs, StartTime=datetime.now(UTC) + timedelta(minutes=5))

    assert [len(p["Events"]) for p in pages] == [2, 2, 1]
    names = [e["Resources"][0]["ResourceName"] for p in pages for e in p["Events"]]
    assert sorted(names) == [f"job-p{i}" for i in range(5)] and len(set(names)) == 5
    assert future["Events"] == []
    with pytest.raises(ClientError) as err:
        ct.lookup_events(LookupAttributes=attrs * 2)
    assert err.value.response["Error"]["Code"] == "InvalidLookupAttributesException"


def test_cloudtrail_lag_hides_then_delivers_and_clear_emulates_absence(emulator: Emulator) -> None:
    sm, ct = emulator.client("sagemaker"), emulator.client("cloudtrail")
    attrs = [{"AttributeKey": "ResourceName", "AttributeValue": "job-late"}]
    moto_ext.set_cloudtrail_lag(900, region=REGION, endpoint=emulator.endpoint)
    _create_job(sm, "job-late")

    late = ct.lookup_events(LookupAttributes=attrs)["Events"]
    moto_ext.set_cloudtrail_lag(0, region=REGION, endpoint=emulator.endpoint)
    delivered = ct.lookup_events(LookupAttributes=attrs)["Events"]
    removed = moto_ext.clear_cloudtrail_events("job-late", region=REGION, endpoint=emulator.endpoint)
    absent = ct.lookup_events(LookupAttributes=attrs)["Events"]

    assert late == [] and len(delivered) == 1
    assert removed == 1 and absent == []


def test_install_is_idempotent() -> None:
    from moto.sagemaker.responses import SageMakerResponse

    moto_ext.install()
    patched = SageMakerResponse.create_training_job
    moto_ext.install()
    assert SageMakerResponse.create_training_job is patched and moto_ext.installed()


def test_backdated_creation_moves_the_create_event_and_list_filters_work(emulator: Emulator) -> None:
    sm, ct = emulator.client("sagemaker"), emulator.client("cloudtrail")
    _create_job(sm, "job-old")
    created = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

    moto_ext.set_training_job_state(
        "job-old",
        moto_ext.JobState(
            status="Completed", creation=created, start=created + timedelta(minutes=5), end=created + timedelta(hours=1)
        ),
        region=REGION,
        endpoint=emulator.endpoint,
    )
    [event] = ct.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": "job-old"}])[
        "Events"
    ]
    recent = sm.list_training_jobs(LastModifiedTimeAfter=datetime.now(UTC) - timedelta(minutes=5))
    later = sm.list_training_jobs(CreationTimeAfter=created + timedelta(days=1))

    assert event["EventTime"] == created
    assert json.loads(event["CloudTrailEvent"])["eventTime"] == "2026-01-05T08:00:00Z"
    assert sm.describe_training_job(TrainingJobName="job-old")["CreationTime"] == created
    assert [j["TrainingJobName"] for j in recent["TrainingJobSummaries"]] == ["job-old"]
    assert later["TrainingJobSummaries"] == []


def test_eventbridge_to_sqs_keeps_the_envelope_account(emulator: Emulator) -> None:
    events, sqs = emulator.client("events"), emulator.client("sqs")
    queue = sqs.create_queue(QueueName="envelope")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all-sagemaker", EventPattern=json.dumps({"source": ["aws.sagemaker"]}))
    events.put_targets(Rule="all-sagemaker", Targets=[{"Id": "q", "Arn": arn}])

    events.put_events(
        Entries=[
            {
                "Source": "aws.sagemaker",
                "DetailType": "SageMaker Training Job State Change",
                "Detail": json.dumps({"TrainingJobName": "x", "TrainingJobStatus": "Completed"}),
            }
        ]
    )
    [message] = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]

    envelope = json.loads(message["Body"])
    assert envelope["account"] == "123456789012"
    assert {"version", "id", "detail-type", "source", "time", "region", "resources", "detail"} <= set(envelope)


def test_describe_serves_what_lineage_reads_and_writes(emulator: Emulator) -> None:
    sm = emulator.client("sagemaker")
    group = f"arn:aws:sagemaker:{REGION}:123456789012:model-package-group/support-bot"
    source = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/support-bot/1"
    channel = {"ChannelName": "model", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://m/p"}}}
    _create_job(
        sm,
        "job-lineage",
        InputDataConfig=[channel],
        CheckpointConfig={"S3Uri": "s3://ckpt/run-a"},
        HyperParameters={"model_name_or_path": "s3://m/p"},
        ModelPackageConfig={"ModelPackageGroupArn": group, "SourceModelPackageArn": source},
    )
    job = sm.describe_training_job(TrainingJobName="job-lineage")
    assert job["InputDataConfig"] == [channel]
    assert job["CheckpointConfig"] == {"S3Uri": "s3://ckpt/run-a"}
    assert job["ModelArtifacts"] == {"S3ModelArtifacts": "s3://out/prefix/job-lineage/output/model.tar.gz"}
    assert job["ModelPackageConfig"] == {"ModelPackageGroupArn": group, "SourceModelPackageArn": source}
    assert "OutputModelPackageArn" not in job  # registered when the job completes
    moto_ext.set_training_job_state(
        "job-lineage", moto_ext.JobState(status="Completed"), region=REGION, endpoint=emulator.endpoint
    )
    done = sm.describe_training_job(TrainingJobName="job-lineage")
    assert done["OutputModelPackageArn"] == f"arn:aws:sagemaker:{REGION}:123456789012:model-package/support-bot/1"
