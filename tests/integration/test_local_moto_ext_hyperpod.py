"""moto gap-fillers for SageMaker HyperPod and the reports queue (flopsmeter.local.moto_ext.hyperpod), checked against
botocore's own service model: DescribeCluster / ListClusterNodes / ListClusters answer with members of their output
shapes (every required one present), nodes get EC2-style ids and can be backdated, and SQS's SenderId is the caller's
role session as SQS sets it. In-process and over HTTP to a server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.session
import pytest

from flopsmeter.aws.hyperpod import HyperPodClusters
from flopsmeter.local.moto_ext.hyperpod import ClusterNodes, set_cluster_nodes
from tests.support.moto_endpoints import MODES, emulated

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/HyperPodNodeRole"
GROUP = {"InstanceGroupName": "workers", "InstanceType": "ml.p5.48xlarge", "InstanceCount": 3, "ExecutionRole": ROLE,
         "LifeCycleConfig": {"SourceS3Uri": "s3://sagemaker-lifecycle/", "OnCreate": "on_create.sh"}}  # fmt: skip
MODEL = botocore.session.get_session().get_service_model("sagemaker")


@pytest.fixture(params=MODES)
def endpoint(request: pytest.FixtureRequest) -> Iterator[str | None]:
    with emulated(request.param) as url:
        yield url


def client(service: str, endpoint: str | None, **credentials: Any) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint, **credentials)


def fits(value: Any, shape: Any, where: str = "") -> list[str]:
    """Where ``value`` has a member ``shape`` does not, or lacks a required one (botocore's output shape)."""
    problems: list[str] = []
    if shape.type_name == "structure":
        problems += [f"{where}.{k}: not in {shape.name}" for k in value if k not in shape.members]
        problems += [f"{where}.{k}: required by {shape.name}" for k in shape.required_members if k not in value]
        for key, item in value.items():
            if key in shape.members:
                problems += fits(item, shape.members[key], f"{where}.{key}")
    elif shape.type_name == "list":
        for i, item in enumerate(value):
            problems += fits(item, shape.member, f"{where}[{i}]")
    return problems


def test_cluster_answers_fit_botocores_shapes_and_nodes_look_like_ec2(endpoint: str | None) -> None:
    sm = client("sagemaker", endpoint)
    sm.create_cluster(
        ClusterName="research",
        InstanceGroups=[GROUP],
        Orchestrator={"Eks": {"ClusterArn": "arn:aws:eks:us-east-1:123456789012:cluster/k"}},
    )
    launched = datetime.now(UTC) - timedelta(days=2)
    set_cluster_nodes("research", ClusterNodes(launched), region=REGION, endpoint=endpoint)

    for operation, kwargs in (("DescribeCluster", {"ClusterName": "research"}),
                              ("ListClusterNodes", {"ClusterName": "research"}), ("ListClusters", {})):  # fmt: skip
        method = getattr(sm, "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_"))
        reply = {k: v for k, v in method(**kwargs).items() if k not in ("ResponseMetadata", "NextToken")}
        assert fits(reply, MODEL.operation_model(operation).output_shape) == [], operation
    nodes = sm.list_cluster_nodes(ClusterName="research")["ClusterNodeSummaries"]
    assert len(nodes) == 3 and all(n["InstanceId"].startswith("i-") and len(n["InstanceId"]) == 19 for n in nodes)
    assert all(abs((n["LaunchTime"] - launched).total_seconds()) < 1 for n in nodes)
    inventory = HyperPodClusters(sm, client("iam", endpoint)).cluster("research")
    assert inventory.orchestrator == "eks" and inventory.execution_roles == frozenset({ROLE})
    assert {n.instance_id for n in inventory.nodes} == {n["InstanceId"] for n in nodes}


def test_sqs_sender_id_is_the_callers_role_session(endpoint: str | None) -> None:
    iam = client("iam", endpoint)
    role = iam.create_role(RoleName="HyperPodNodeRole", AssumeRolePolicyDocument=json.dumps({"Statement": []}))["Role"]
    creds = client("sts", endpoint).assume_role(RoleArn=role["Arn"], RoleSessionName="i-0123456789abcdef0")[
        "Credentials"
    ]
    keys = {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"]}
    as_node = client("sqs", endpoint, aws_session_token=creds["SessionToken"], **keys)
    url = client("sqs", endpoint).create_queue(QueueName="reports")["QueueUrl"]
    as_node.send_message(QueueUrl=url, MessageBody="{}")
    [message] = client("sqs", endpoint).receive_message(QueueUrl=url, AttributeNames=["SenderId"])["Messages"]
    assert message["Attributes"]["SenderId"] == f"{role['RoleId']}:i-0123456789abcdef0"
    assert HyperPodClusters(None, iam).role("HyperPodNodeRole")[0] == role["RoleId"]
