"""SageMaker HyperPod clusters (DescribeCluster, ListClusterNodes, ListClusters) and the IAM role a report came from
(GetRole), for ``flopsmeter.service.hyperpod``."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from flopsmeter.aws.errors import error_code, is_not_found, is_unknown_resource, translate
from flopsmeter.domain.hyperpod import ClusterInventory, Node
from flopsmeter.domain.times import as_utc
from flopsmeter.errors import ClusterNotFound, RoleNotFound


class HyperPodClusters:
    def __init__(self, sagemaker: Any, iam: Any) -> None:
        self.sagemaker = sagemaker
        self.iam = iam

    def cluster(self, name: str) -> ClusterInventory:
        try:
            reply = self.sagemaker.describe_cluster(ClusterName=name)
            nodes = [
                node
                for page in self.sagemaker.get_paginator("list_cluster_nodes").paginate(ClusterName=name)
                for node in page.get("ClusterNodeSummaries", [])
            ]
        except ClientError as err:
            if is_unknown_resource(err) or is_not_found(err):
                raise ClusterNotFound(f"HyperPod cluster {name} does not exist: {err}") from err
            raise translate(err, f"DescribeCluster/ListClusterNodes {name}") from err
        except BotoCoreError as err:
            raise translate(err, f"DescribeCluster/ListClusterNodes {name}") from err
        groups = reply.get("InstanceGroups") or []
        return ClusterInventory(
            name=str(reply.get("ClusterName") or name),
            arn=str(reply.get("ClusterArn", "")),
            execution_roles=frozenset(str(g["ExecutionRole"]) for g in groups if g.get("ExecutionRole")),
            nodes=tuple(
                Node(
                    instance_id=str(n.get("InstanceId", "")),
                    instance_type=str(n.get("InstanceType", "unknown")),
                    launch_time=as_utc(n.get("LaunchTime")),
                    group=str(n.get("InstanceGroupName", "")),
                )
                for n in nodes
            ),
            orchestrator="eks" if (reply.get("Orchestrator") or {}).get("Eks") else "slurm",
            creation_time=as_utc(reply.get("CreationTime")),
        )

    def cluster_names(self) -> list[str]:
        try:
            return [
                str(summary["ClusterName"])
                for page in self.sagemaker.get_paginator("list_clusters").paginate()
                for summary in page.get("ClusterSummaries", [])
            ]
        except (ClientError, BotoCoreError) as err:
            raise translate(err, "ListClusters") from err

    def role(self, name: str) -> tuple[str, dict[str, str]]:
        try:
            role = self.iam.get_role(RoleName=name)["Role"]
        except ClientError as err:
            if error_code(err) == "NoSuchEntity" or is_not_found(err):  # IAM's "not found"
                raise RoleNotFound(f"IAM role {name} does not exist: {err}") from err
            raise translate(err, f"GetRole {name}") from err
        except BotoCoreError as err:
            raise translate(err, f"GetRole {name}") from err
        return str(role["RoleId"]), {str(t["Key"]): str(t.get("Value", "")) for t in role.get("Tags", [])}
