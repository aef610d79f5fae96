"""The emulator's launch calls: recorded in CloudTrail, delivered to EventBridge only while a trail logs, the parent
ARN on DescribeTrainingJob, and CloudTrail's LookupEvents quota on a clock of the test's choice."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from flopsmeter import contract
from flopsmeter.local import moto_ext
from flopsmeter.local.moto_ext.cloudtrail import RateLimit, set_cloudtrail_rate_limit

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
JOB = {
    "RoleArn": ROLE,
    "AlgorithmSpecification": {"TrainingImage": "img:latest", "TrainingInputMode": "File"},
    "OutputDataConfig": {"S3OutputPath": "s3://out/"},
    "ResourceConfig": {"InstanceType": "ml.g5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
    "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
}


@pytest.fixture
def aws():
    moto_ext.install()
    with mock_aws():
        clients = {n: boto3.client(n, region_name=REGION) for n in ("sagemaker", "events", "sqs", "cloudtrail", "s3")}
        url = clients["sqs"].create_queue(QueueName="launches")["QueueUrl"]
        arn = clients["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        clients["events"].put_rule(Name="launches", EventPattern=json.dumps(contract.training_launch_pattern()))
        clients["events"].put_targets(Rule="launches", Targets=[{"Id": "q", "Arn": arn}])
        clients["url"] = url
        yield clients


def _delivered(aws) -> list[dict]:
    messages = aws["sqs"].receive_message(QueueUrl=aws["url"], MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def _start_trail(aws) -> None:
    aws["s3"].create_bucket(Bucket="trail-bucket")
    aws["cloudtrail"].create_trail(Name="trail", S3BucketName="trail-bucket")
    aws["cloudtrail"].start_logging(Name="trail")


def test_launch_calls_reach_eventbridge_only_while_a_trail_logs(aws) -> None:
    aws["sagemaker"].create_training_job(TrainingJobName="before-trail", **JOB)
    assert _delivered(aws) == []
    _start_trail(aws)
    sweep = aws["sagemaker"].create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="sweep",
        HyperParameterTuningJobConfig={
            "Strategy": "Bayesian",
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1},
        },
        TrainingJobDefinition=JOB,
    )["HyperParameterTuningJobArn"]
    [event] = _delivered(aws)
    assert event["detail-type"] == contract.CLOUDTRAIL_API_CALL and event["source"] == "aws.sagemaker"
    assert event["detail"]["eventName"] == "CreateHyperParameterTuningJob"
    assert event["detail"]["responseElements"] == {"hyperParameterTuningJobArn": sweep}
    lookup = aws["cloudtrail"].lookup_events(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": sweep}]
    )
    assert [e["EventName"] for e in lookup["Events"]] == ["CreateHyperParameterTuningJob"]


def test_a_trial_reports_the_tuning_job_that_launched_it(aws) -> None:
    aws["sagemaker"].create_training_job(TrainingJobName="trial-1", **JOB)
    parent = "arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/sweep"
    moto_ext.set_training_job_state(
        "trial-1", moto_ext.JobState(status="InProgress", launched_by=parent), region=REGION
    )
    assert aws["sagemaker"].describe_training_job(TrainingJobName="trial-1")["TuningJobArn"] == parent


def test_lookup_events_is_throttled_beyond_two_requests_a_second(aws) -> None:
    now = [0.0]
    limit = set_cloudtrail_rate_limit(RateLimit(clock=lambda: now[0]), region=REGION)
    client = boto3.client("cloudtrail", region_name=REGION, config=Config(retries={"total_max_attempts": 1}))
    client.lookup_events()
    client.lookup_events()
    with pytest.raises(ClientError) as raised:
        client.lookup_events()
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    now[0] += 0.5  # one token back
    client.lookup_events()
    assert limit is not None and (limit.calls, limit.throttled) == (4, 1)
    set_cloudtrail_rate_limit(None, region=REGION)


def test_the_adapter_reads_the_jobs_a_pipeline_executions_steps_ran(aws) -> None:
    """``SageMakerJobs.pipeline_step_jobs`` over the emulated ListPipelineExecutionSteps (moto has none): the jobs
    moved with ``pipeline_execution`` are the steps'; a job merely tagged with the execution is not."""
    from flopsmeter.aws.sagemaker import SageMakerJobs

    sm = aws["sagemaker"]
    sm.create_pipeline(
        PipelineName="pipe", PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}), RoleArn=ROLE
    )
    execution = sm.start_pipeline_execution(PipelineName="pipe")["PipelineExecutionArn"]
    tag = [{"Key": contract.TAG_PIPELINE_EXECUTION_ARN, "Value": execution}]
    step = sm.create_training_job(TrainingJobName="Step-Job", Tags=tag, **JOB)["TrainingJobArn"]
    sm.create_training_job(TrainingJobName="claims-the-pipeline", Tags=tag, **JOB)
    moto_ext.set_training_job_state(
        "Step-Job", moto_ext.JobState(pipeline_execution=execution), account_id="123456789012", region=REGION
    )
    jobs = SageMakerJobs(sm)
    assert jobs.pipeline_step_jobs(execution) == frozenset({step.lower()})
    unknown = execution.rsplit("/", 1)[0] + "/nosuchexecution"
    assert jobs.pipeline_step_jobs(unknown) == frozenset()
