"""SageMaker HyperPod and the reports queue on moto 5.2 (issue 26 point 3).

What moto does not do, and what ``patch()`` adds (emulated behaviour, not AWS's):

* ``CreateCluster`` names its nodes ``<group>-<n>`` and launches them now; after ``patch()`` each node has an EC2-style
  instance id (``i-`` + 17 hex digits, stable for the cluster, group and index), ``DescribeCluster`` reports the
  ``Orchestrator`` it was created with, and ``set_cluster_nodes`` backdates the nodes' ``LaunchTime``.
* SQS ``SendMessage`` stamps every message with one fixed ``SenderId``; after ``patch()`` it is the caller's, as SQS
  sets it: ``<role unique id>:<session name>`` for assumed-role credentials (moto's STS and IAM), else the user's id.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from flopsmeter.local.moto_ext.cloudtrail import caller_identity
from flopsmeter.local.moto_ext.common import (
    CONTROL_PREFIX,
    EmulatorError,
    default_account,
    default_region,
    naive,
    parse_time,
    post,
)

CLUSTER_STATE_PATH = f"{CONTROL_PREFIX}/hyperpod-cluster-nodes"


def instance_id(cluster: str, group: str, index: int) -> str:
    return "i-" + hashlib.sha256(f"{cluster}/{group}/{index}".encode()).hexdigest()[:17]


def patch() -> None:
    from moto.sagemaker.responses import SageMakerResponse
    from moto.sqs.responses import SQSResponse

    original_create = SageMakerResponse.create_cluster
    original_describe = SageMakerResponse.describe_cluster
    original_send = SQSResponse.send_message

    def create_cluster(self: Any) -> Any:
        for group in self._get_param("InstanceGroups") or []:
            group.setdefault("ThreadsPerCore", 1)  # optional in the API; moto indexes it
            group.setdefault("TargetCount", group.get("InstanceCount", 0))
        result = original_create(self)
        cluster = self.sagemaker_backend.clusters[self._get_param("ClusterName")]
        cluster.flopsmeter_orchestrator = self._get_param("Orchestrator")
        renamed = {}
        for node in cluster.nodes.values():
            index = int(str(node.instance_id).rsplit("-", 1)[-1])
            node.instance_id = instance_id(cluster.cluster_name, node.instance_group_name, index)
            renamed[node.instance_id] = node
        cluster.nodes = renamed
        return result

    def describe_cluster(self: Any) -> Any:
        result = original_describe(self)
        cluster = self.sagemaker_backend.clusters.get(self._get_param("ClusterName"))
        orchestrator = getattr(cluster, "flopsmeter_orchestrator", None)
        if orchestrator and isinstance(result.result, dict):
            result.result["Orchestrator"] = orchestrator
        return result

    def send_message(self: Any) -> Any:
        result = original_send(self)
        access_key = self.get_access_key() or ""
        sender, _ = caller_identity(self.current_account, access_key, self.region)
        queue = self.sqs_backend.get_queue(self._get_queue_name())
        message_id = result.result.get("MessageId") if isinstance(result.result, dict) else None
        for message in list(queue._messages):
            if message.id == message_id:
                message.sender_id = sender
        return result

    SageMakerResponse.create_cluster = create_cluster  # type: ignore[method-assign]
    SageMakerResponse.describe_cluster = describe_cluster  # type: ignore[method-assign]
    SQSResponse.send_message = send_message  # type: ignore[method-assign]


@dataclass(frozen=True)
class ClusterNodes:
    """Where to move an emulated cluster's nodes: their launch time."""

    launched: datetime


def set_cluster_nodes(
    cluster: str,
    nodes: ClusterNodes,
    *,
    account_id: str | None = None,
    region: str | None = None,
    endpoint: str | None = None,
) -> dict[str, Any]:
    body = {"name": cluster, **asdict(nodes), "account_id": account_id or default_account(),
            "region": region or default_region()}  # fmt: skip
    if endpoint:
        return post(endpoint, CLUSTER_STATE_PATH, body)
    return apply_cluster_nodes(body)


def apply_cluster_nodes(body: dict[str, Any]) -> dict[str, Any]:
    from moto.sagemaker.models import sagemaker_backends

    backend = sagemaker_backends[body["account_id"]][body["region"]]
    cluster = backend.clusters.get(body["name"])
    if cluster is None:
        raise EmulatorError(f"no HyperPod cluster {body['name']!r} in {body['account_id']}/{body['region']}")
    launched = naive(parse_time(body.get("launched")))
    if launched is None:
        raise EmulatorError("a launch time is needed")
    for node in cluster.nodes.values():
        node.launch_time = launched
    if cluster.creation_time > launched:
        cluster.creation_time = launched
    return {"nodes": sorted(cluster.nodes)}
