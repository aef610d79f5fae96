"""moto gap-fillers for managed customization (flopsmeter.local.moto_ext): SageMaker serverless customization
fields on DescribeTrainingJob, and the Bedrock model customization job lifecycle with its CloudTrail event.

Emulated behaviour: moto 5.2.5 alone drops ServerlessJobConfig, has no BillableTokenCount, and ends a Bedrock job
at creation with a made-up failure message. Each test runs in-process (mock_aws) and over HTTP to a server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from flopsmeter.aws.bedrock import BedrockJobs
from flopsmeter.local import moto_ext
from flopsmeter.local.moto_ext import CustomizationJobState, JobState
from tests.support.moto_endpoints import MODES, emulated

REGION = "us-east-1"
HUB = "arn:aws:sagemaker:us-east-1:aws:hub-content/SageMakerPublicHub/Model"
SERVERLESS = {"BaseModelArn": f"{HUB}/meta-textgeneration-llama-3-1-8b-instruct/2.8.1", "JobType": "FineTuning",
              "CustomizationTechnique": "SFT", "Peft": "LORA", "SequenceLength": "4K"}  # fmt: skip


@pytest.fixture(params=MODES)
def endpoint(request: pytest.FixtureRequest) -> Iterator[str | None]:
    with emulated(request.param) as url:
        yield url


def client(service: str, endpoint: str | None) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint)


def test_serverless_job_keeps_its_config_and_reports_billable_tokens(endpoint: str | None) -> None:
    sm = client("sagemaker", endpoint)
    sm.create_training_job(TrainingJobName="sft-lora", RoleArn="arn:aws:iam::123456789012:role/x",
                           OutputDataConfig={"S3OutputPath": "s3://out/"}, ServerlessJobConfig=SERVERLESS)  # fmt: skip
    moto_ext.set_training_job_state("sft-lora", JobState(status="Completed", billable_tokens=50_000_000),
                                    region=REGION, endpoint=endpoint)  # fmt: skip
    job = sm.describe_training_job(TrainingJobName="sft-lora")
    assert job["ServerlessJobConfig"] == SERVERLESS
    assert job["BillableTokenCount"] == 50_000_000 and job["TrainingJobStatus"] == "Completed"


def _create_bedrock_job(endpoint: str | None) -> str:
    reply = client("bedrock", endpoint).create_model_customization_job(
        jobName="support-bot-ft",
        customModelName="support-bot",
        roleArn="arn:aws:iam::123456789012:role/BedrockCustomization",
        baseModelIdentifier="meta.llama3-1-8b-instruct-v1:0",
        customizationType="FINE_TUNING",
        hyperParameters={"epochCount": "2"},
        trainingDataConfig={"s3Uri": "s3://data/train.jsonl"},
        outputDataConfig={"s3Uri": "s3://data/out/"},
        jobTags=[{"key": "flopsmeter:pretrain-flops", "value": "1e24"}],
    )
    return str(reply["jobArn"])


def test_bedrock_job_lifecycle_lookup_by_arn_and_its_creator(endpoint: str | None) -> None:
    arn = _create_bedrock_job(endpoint)
    jobs = BedrockJobs(client("bedrock", endpoint), client("cloudtrail", endpoint))
    job = jobs.get_job("support-bot-ft")
    assert job["status"] == "InProgress" and "endTime" not in job and "failureMessage" not in job
    assert jobs.get_job(arn)["jobName"] == "support-bot-ft"
    view = moto_ext.set_model_customization_job_state(
        "support-bot-ft", CustomizationJobState(status="Failed", failure_message="data error"), region=REGION,
        endpoint=endpoint)  # fmt: skip
    assert view["status"] == "Failed" and view["endTime"]
    job = jobs.get_job("support-bot-ft")
    assert (job["status"], job["failureMessage"]) == ("Failed", "data error")
    assert jobs.tags(arn) == {"flopsmeter:pretrain-flops": "1e24"}
    hit = jobs.find_create_job("support-bot-ft", arn, job["creationTime"])
    assert hit is not None and hit.principal_arn and hit.event_id


def test_unknown_bedrock_state_changes_are_refused(endpoint: str | None) -> None:
    _create_bedrock_job(endpoint)
    with pytest.raises(moto_ext.EmulatorError):
        moto_ext.set_model_customization_job_state("support-bot-ft", CustomizationJobState(status="Exploded"),
                                                   region=REGION, endpoint=endpoint)  # fmt: skip
    with pytest.raises(moto_ext.EmulatorError):
        moto_ext.set_model_customization_job_state("no-such-job", CustomizationJobState(status="Completed"),
                                                   region=REGION, endpoint=endpoint)  # fmt: skip


def test_the_reconciler_listing_finds_terminal_bedrock_jobs(endpoint: str | None) -> None:
    _create_bedrock_job(endpoint)
    jobs = BedrockJobs(client("bedrock", endpoint), client("cloudtrail", endpoint))
    since = datetime.now(UTC) - timedelta(hours=1)
    assert list(jobs.recent_terminal_jobs(since)) == []  # still InProgress
    moto_ext.set_model_customization_job_state("support-bot-ft", CustomizationJobState(status="Completed"),
                                               region=REGION, endpoint=endpoint)  # fmt: skip
    (summary,) = jobs.recent_terminal_jobs(since)
    assert (summary["jobName"], summary["status"]) == ("support-bot-ft", "Completed")
