"""A HyperPod cluster and its roles for the service's unit tests (a ``ClusterSource`` fake) and report builders."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flopsmeter.domain.hyperpod import ClusterInventory, Node
from flopsmeter.errors import ClusterNotFound, RoleNotFound
from flopsmeter.ports import MeteredFigures
from flopsmeter.service.hyperpod import HyperPodReport, ReportMessage

ACCOUNT = "123456789012"
CLUSTER_ARN = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:cluster/abc123"
NODE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/HyperPodNodeRole"
NODE_ROLE_ID = "AROAEXAMPLENODEROLE01"
NODES = ("i-0123456789abcdef0", "i-0fedcba9876543210")


@dataclass
class FakeClusters:
    roles: dict[str, tuple[str, dict[str, str]]] = field(
        default_factory=lambda: {"HyperPodNodeRole": (NODE_ROLE_ID, {})}
    )
    clusters: dict[str, ClusterInventory] = field(default_factory=dict)

    def cluster(self, name: str) -> ClusterInventory:
        for cluster in self.clusters.values():
            if name in (cluster.name, cluster.arn):
                return cluster
        raise ClusterNotFound(f"HyperPod cluster {name} does not exist")

    def cluster_names(self) -> list[str]:
        return sorted(self.clusters)

    def role(self, name: str) -> tuple[str, dict[str, str]]:
        if name not in self.roles:
            raise RoleNotFound(f"IAM role {name} does not exist")
        return self.roles[name]


def inventory(launched: datetime, *, name: str = "research", instance_type: str = "ml.p5.48xlarge") -> ClusterInventory:
    return ClusterInventory(
        name=name,
        arn=CLUSTER_ARN,
        execution_roles=frozenset({NODE_ROLE}),
        nodes=tuple(Node(i, instance_type, launched, "workers") for i in NODES),
    )


def message(
    start: datetime,
    end: datetime,
    *,
    role: str = "HyperPodNodeRole",
    session: str = NODES[0],
    sender_id: str | None = None,
    flops: float | None = 1.0e21,
    incomplete: float | None = 0.0,
    job_id: str = "4242",
    settings: dict[str, str] | None = None,
) -> ReportMessage:
    report = HyperPodReport(
        cluster="research",
        orchestrator="slurm",
        job_id=job_id,
        caller_arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
        status="Completed",
        start=start,
        end=end,
        instance_type="ml.p5.48xlarge",
        node_count=2,
        figures=MeteredFigures(cumulative_flops=flops, tokens=1e9, datapoints=1, meter_incomplete=incomplete),
        settings=settings or {},
        submitted_by="dana",
    )
    return ReportMessage(report, sender_id or f"{NODE_ROLE_ID}:{session}", "message-1")
