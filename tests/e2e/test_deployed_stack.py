"""Against a deployed stack (needs an AWS account; skipped otherwise).

    FLOPSMETER_STACK=FlopsMeter-prod FLOPSMETER_E2E_JOB=<a finished training job> make test-e2e

Reads the stack's outputs, sends the job's state-change event through the real classifier queue (SageMaker's own
``aws.sagemaker`` events cannot be forged with PutEvents), waits for the record, then reads and verifies the audit
bucket with the CLI, as a compliance officer would.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import UTC, datetime

import pytest

STACK = os.environ.get("FLOPSMETER_STACK")
JOB = os.environ.get("FLOPSMETER_E2E_JOB")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (STACK and JOB), reason="set FLOPSMETER_STACK and FLOPSMETER_E2E_JOB to run against AWS"),
]


@pytest.fixture(scope="module")
def outputs() -> dict[str, str]:
    import boto3

    stack = boto3.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def test_a_finished_job_gets_a_locked_verifiable_record(outputs, capsys):
    import boto3

    from flopsmeter.cli.main import main

    job = boto3.client("sagemaker").describe_training_job(TrainingJobName=JOB)
    assert job["TrainingJobStatus"] in {"Completed", "Failed", "Stopped"}, "FLOPSMETER_E2E_JOB must have ended"
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "SageMaker Training Job State Change",
        "source": "aws.sagemaker",
        "account": job["TrainingJobArn"].split(":")[4],
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": job["TrainingJobArn"].split(":")[3],
        "resources": [job["TrainingJobArn"]],
        "detail": {"TrainingJobName": JOB, "TrainingJobArn": job["TrainingJobArn"],
                   "TrainingJobStatus": job["TrainingJobStatus"]},
    }  # fmt: skip
    boto3.client("sqs").send_message(QueueUrl=outputs["ClassifierQueueUrl"], MessageBody=json.dumps(event))

    bucket = outputs["AuditBucketName"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        capsys.readouterr()
        if main(["query", "--bucket", bucket, "--job", JOB, "--format", "json"]) == 0:
            rows = json.loads(capsys.readouterr().out or "[]")
            if rows:
                break
        time.sleep(10)
    else:
        pytest.fail(f"no record for {JOB} in s3://{bucket} after 5 minutes (look at the classifier's logs and DLQ)")

    s3 = boto3.client("s3")
    key = next(
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="records/v1/")
        for o in page.get("Contents", [])
        if o["Key"].endswith(f"/{JOB}.json")
    )
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    capsys.readouterr()
    # verify exits 1 on any failure; records newer than the last hourly digest are "not yet covered", not failures
    assert main(["verify", "--bucket", bucket]) == 0, capsys.readouterr().out
