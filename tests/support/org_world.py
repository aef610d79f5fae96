"""Organization mode on moto (in-process ``mock_aws``): member accounts, their reader role, their jobs in any region,
and their state changes as the organization bus's rule delivers them (``tests.support.moto_world`` is the compliance
account). moto keys accounts by the credentials a client uses: a member's administrator is an assumed role there.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import boto3

from flopsmeter import contract
from flopsmeter.local import moto_ext
from tests.support.moto_world import ACCOUNT, REGION, state_change

ROLE = contract.member_reader_role_name("test")


def as_account(account: str, service: str, region: str = REGION) -> Any:
    """A client acting in ``account`` (an administrator there), the way a member account's own team works."""
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="admin"
    )["Credentials"]
    return boto3.client(
        service,
        region_name=region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def member_job(account: str, name: str, aws: Any, *, region: str = REGION, instance_type: str = "ml.g5.xlarge") -> Any:
    """A Completed job of ``account`` in ``region`` that ran an hour from ``aws.t0``; returns its end."""
    own = account == ACCOUNT
    client = boto3.client("sagemaker", region_name=region) if own else as_account(account, "sagemaker", region)
    client.create_training_job(
        TrainingJobName=name,
        RoleArn=f"arn:aws:iam::{account}:role/SageMakerRole",
        AlgorithmSpecification={
            "TrainingImage": f"123.dkr.ecr.{region}.amazonaws.com/hf:1",
            "TrainingInputMode": "File",
        },
        OutputDataConfig={"S3OutputPath": "s3://models/out"},
        ResourceConfig={"InstanceType": instance_type, "InstanceCount": 1, "VolumeSizeInGB": 50},
        StoppingCondition={"MaxRuntimeInSeconds": 86400},
    )
    end = aws.t0 + timedelta(hours=1)
    moto_ext.set_training_job_state(
        name, moto_ext.JobState(status="Completed", start=aws.t0, end=end), account_id=account, region=region
    )
    return end


def create_reader_role(account: str) -> None:
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": ACCOUNT}}],
    }
    iam = boto3.client("iam", region_name=REGION) if account == ACCOUNT else as_account(account, "iam")
    iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))


def forwarded(name: str, account: str, region: str = REGION, instance_type: str = "ml.g5.xlarge") -> str:
    """The state change as the organization bus's rule delivers it: the job's account and region in the envelope."""
    event = json.loads(state_change(name))
    arn = f"arn:aws:sagemaker:{region}:{account}:training-job/{name}"
    event["account"], event["region"], event["resources"] = account, region, [arn]
    event["detail"]["TrainingJobArn"] = arn
    event["detail"]["ResourceConfig"]["InstanceType"] = instance_type
    return json.dumps(event)


def member_client(credentials: dict[str, Any], service: str, region: str | None) -> Any:
    """The production ``ClientBuilder``'s shape over moto: a client with an assumed role's credentials."""
    return boto3.client(
        service,
        region_name=region or REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
