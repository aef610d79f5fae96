"""SageMaker HyperPod (issue 26 point 3): who reported a job, whether the sender belongs to the cluster it names, and
how much of a cluster's compute over a period its reported jobs cover (pure, stdlib only).

A HyperPod job has no SageMaker job API and no state-change event; its meter reports it. Trust comes from the
channel, not the body: SQS's ``SenderId`` is ``<role unique id>:<session name>`` of the credentials that signed the
request. The service checks that the role the body names has that unique id (IAM GetRole) and that the sender belongs
to the cluster (``link_to_cluster``): its session is one of the cluster's instances (a Slurm node's instance role:
EC2 names the session after the instance), its role is one of the cluster's instance-group execution roles, or its
role carries the ``flopsmeter:hyperpod-cluster`` tag for the cluster (EKS pods' IRSA / Pod Identity roles).

A cluster's period is compared with its ceiling (``cluster_period``): every node's seconds in the period x its chips
x their dense peak, against the reported jobs' FLOPs in the period (a job spanning periods counts pro rata to its
time in each). What the reports do not cover is the gap, recorded, never dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from flopsmeter.domain.hardware import hardware_ceiling

INSTANCE_SESSION = re.compile(r"^i-[0-9a-f]{8,17}$")  # EC2 names an instance role's session after the instance
SENDER_ID = re.compile(r"^(AROA[A-Z0-9]{12,128}):(.{2,64})$")
CALLER_ARN = re.compile(r"^arn:aws[a-z-]*:sts::([0-9]{12}):assumed-role/([\w+=,.@-]{1,64})/(.{2,64})$")


class ClusterLink(StrEnum):
    """How the sender was tied to the cluster it reports for (strongest first)."""

    NODE = "node"  # the session is one of the cluster's instances (Slurm node instance role)
    EXECUTION_ROLE = "execution_role"  # the role is one of the cluster's instance-group execution roles
    ROLE_TAG = "role_tag"  # the role is tagged flopsmeter:hyperpod-cluster=<cluster name or ARN> (EKS pod role)


@dataclass(frozen=True)
class Sender:
    """The authenticated sender (SQS SenderId) and the role the report claims, once they agree."""

    role_id: str
    session: str
    account_id: str
    role_name: str
    partition: str = "aws"

    @property
    def role_arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:role/{self.role_name}"

    @property
    def principal_arn(self) -> str:
        return f"arn:{self.partition}:sts::{self.account_id}:assumed-role/{self.role_name}/{self.session}"


def sender_from(sender_id: str | None, caller_arn: str) -> tuple[Sender | None, str]:
    """The sender when SQS's SenderId and the body's caller ARN agree on the session; else None and why not. The role's
    unique id is checked against IAM by the caller of this function."""
    match = SENDER_ID.match(sender_id or "")
    if match is None:
        return None, (
            f"the message's SenderId {str(sender_id)[:80]!r} is not an IAM role session (AROA…:session): only a "
            "job's role credentials may report a HyperPod job"
        )
    claim = CALLER_ARN.match(caller_arn)
    if claim is None:
        return None, f"the report's caller_arn {caller_arn[:120]!r} is not an assumed-role ARN"
    if claim.group(3) != match.group(2):
        return None, "the report's caller_arn names another session than the one that sent the message"
    partition = caller_arn.split(":", 2)[1]
    return Sender(match.group(1), match.group(2), claim.group(1), claim.group(2), partition), ""


@dataclass(frozen=True)
class Node:
    instance_id: str
    instance_type: str
    launch_time: datetime | None
    group: str = ""


@dataclass(frozen=True)
class ClusterInventory:
    """DescribeCluster + ListClusterNodes, as the service needs them."""

    name: str
    arn: str
    execution_roles: frozenset[str]
    nodes: tuple[Node, ...]
    orchestrator: str = "slurm"  # DescribeCluster Orchestrator: "eks" when it names an EKS cluster
    creation_time: datetime | None = None


def link_to_cluster(sender: Sender, role_cluster_tag: str | None, cluster: ClusterInventory) -> ClusterLink | None:
    """How the sender belongs to the cluster (None: it does not, as far as the service can tell). ``role_cluster_tag``:
    the value of the role's ``flopsmeter:hyperpod-cluster`` tag (``contract.TAG_HYPERPOD_CLUSTER``), if any."""
    if INSTANCE_SESSION.match(sender.session) and sender.session in {n.instance_id for n in cluster.nodes}:
        return ClusterLink.NODE
    if sender.role_arn in cluster.execution_roles:
        return ClusterLink.EXECUTION_ROLE
    tag = (role_cluster_tag or "").strip()
    if tag and tag in {cluster.name, cluster.arn}:
        return ClusterLink.ROLE_TAG
    return None


def overlap_seconds(start: datetime | None, end: datetime, period_start: datetime, period_end: datetime) -> float:
    """Seconds of [start, end] inside [period_start, period_end] (a missing start counts from the period's start)."""
    lo = max(start or period_start, period_start)
    hi = min(end, period_end)
    return max(0.0, (hi - lo).total_seconds())


@dataclass(frozen=True)
class ReportedShare:
    """One reported job, as the cluster comparison counts it."""

    job_id: str
    start: datetime
    end: datetime
    flops: float  # the job's classified FLOPs (its own, lineage excluded)
    record_key: str = ""


@dataclass(frozen=True)
class ClusterPeriod:
    cluster: str
    period_start: datetime
    period_end: datetime
    ceiling_flops: float
    instance_seconds: float
    reported_flops: float
    gap_flops: float  # ceiling - reported, never below zero
    coverage: float  # reported / ceiling (0 when the ceiling is 0)
    jobs: tuple[tuple[str, float], ...]  # (job id, FLOPs counted in this period)
    nodes: tuple[tuple[str, str, float], ...]  # (instance id, type, seconds in the period)
    warnings: tuple[str, ...] = field(default_factory=tuple)


INVENTORY_LIMIT = (
    "the ceiling counts the nodes ListClusterNodes lists at the pass: a node replaced or removed before it is not "
    "counted, so the true ceiling can be higher than shown (compare with the cluster's node events)"
)


def cluster_period(
    cluster: ClusterInventory, jobs: tuple[ReportedShare, ...], period_start: datetime, period_end: datetime
) -> ClusterPeriod:
    """The cluster's ceiling over the period, the reported jobs' share of it, and the gap."""
    warnings = [INVENTORY_LIMIT]
    ceiling = seconds_total = 0.0
    nodes: list[tuple[str, str, float]] = []
    for node in cluster.nodes:
        seconds = overlap_seconds(node.launch_time, period_end, period_start, period_end)
        bound = hardware_ceiling(node.instance_type, 1, seconds)
        warnings += [w for w in bound.warnings if w not in warnings]
        ceiling += bound.flops
        seconds_total += seconds
        nodes.append((node.instance_id, node.instance_type, seconds))
    counted: list[tuple[str, float]] = []
    for job in jobs:
        duration = (job.end - job.start).total_seconds()
        inside = overlap_seconds(job.start, job.end, period_start, period_end)
        share = job.flops if duration <= 0 else job.flops * inside / duration
        if inside > 0 or (duration <= 0 and period_start <= job.end <= period_end):
            counted.append((job.job_id, share))
    reported = sum(flops for _, flops in counted)
    if reported > ceiling:
        warnings.append(
            f"reported FLOPs {reported:.2e} exceed the ceiling {ceiling:.2e}: the inventory misses nodes or a meter "
            "over-counts; the gap is shown as zero, not negative"
        )
    if any(job.end > period_end for job in jobs) or any(job.start < period_start for job in jobs):
        warnings.append("jobs that span the period count pro rata to their time inside it (an even spread assumed)")
    return ClusterPeriod(
        cluster=cluster.name,
        period_start=period_start,
        period_end=period_end,
        ceiling_flops=ceiling,
        instance_seconds=seconds_total,
        reported_flops=reported,
        gap_flops=max(0.0, ceiling - reported),
        coverage=reported / ceiling if ceiling > 0 else 0.0,
        jobs=tuple(counted),
        nodes=tuple(nodes),
        warnings=tuple(warnings),
    )
