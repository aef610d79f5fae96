"""SageMaker HyperPod in the domain (issue 26): who sent a report, how the sender belongs to the cluster, and a
cluster's day against its ceiling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flopsmeter.domain.hardware import hardware_ceiling
from flopsmeter.domain.hyperpod import (
    ClusterInventory,
    ClusterLink,
    Node,
    ReportedShare,
    cluster_period,
    link_to_cluster,
    sender_from,
)

DAY = datetime(2026, 11, 2, tzinfo=UTC)
ROLE_ID = "AROAEXAMPLENODEROLE01"
CALLER = "arn:aws:sts::123456789012:assumed-role/NodeRole/i-0123456789abcdef0"
CLUSTER = ClusterInventory(
    name="research",
    arn="arn:aws:sagemaker:us-east-1:123456789012:cluster/abc",
    execution_roles=frozenset({"arn:aws:iam::123456789012:role/NodeRole"}),
    nodes=(Node("i-0123456789abcdef0", "ml.p5.48xlarge", DAY - timedelta(days=3)),),
)


def test_the_sender_is_the_sqs_sender_id_when_the_caller_arn_names_the_same_session() -> None:
    sender, why = sender_from(f"{ROLE_ID}:i-0123456789abcdef0", CALLER)
    assert sender is not None and why == ""
    assert (sender.account_id, sender.role_name, sender.role_id) == ("123456789012", "NodeRole", ROLE_ID)
    assert sender.role_arn == "arn:aws:iam::123456789012:role/NodeRole" and sender.principal_arn == CALLER


@pytest.mark.parametrize(
    ("sender_id", "caller", "reason"),
    [
        ("AIDAEXAMPLEUSER000001", CALLER, "not an IAM role session"),
        (None, CALLER, "not an IAM role session"),
        (f"{ROLE_ID}:i-0123456789abcdef0", "arn:aws:iam::123456789012:user/alice", "not an assumed-role ARN"),
        (f"{ROLE_ID}:someone-else", CALLER, "another session"),
    ],
)
def test_a_sender_that_does_not_match_the_claim_is_refused_with_why(sender_id, caller, reason) -> None:
    sender, why = sender_from(sender_id, caller)
    assert sender is None and reason in why


def test_the_sender_is_linked_by_node_then_execution_role_then_tag() -> None:
    node, _ = sender_from(f"{ROLE_ID}:i-0123456789abcdef0", CALLER)
    pod, _ = sender_from(f"{ROLE_ID}:botocore-session-1", CALLER.replace("i-0123456789abcdef0", "botocore-session-1"))
    other, _ = sender_from(f"{ROLE_ID}:x1", "arn:aws:sts::123456789012:assumed-role/PodRole/x1")
    assert node is not None and pod is not None and other is not None
    assert link_to_cluster(node, None, CLUSTER) is ClusterLink.NODE
    assert link_to_cluster(pod, None, CLUSTER) is ClusterLink.EXECUTION_ROLE
    assert link_to_cluster(other, "research", CLUSTER) is ClusterLink.ROLE_TAG
    assert link_to_cluster(other, CLUSTER.arn, CLUSTER) is ClusterLink.ROLE_TAG
    assert link_to_cluster(other, "another", CLUSTER) is None
    assert link_to_cluster(other, None, CLUSTER) is None and link_to_cluster(other, "", CLUSTER) is None


def test_a_day_counts_every_node_second_and_the_reported_share_of_jobs_spanning_it() -> None:
    job = ReportedShare("7", DAY - timedelta(hours=12), DAY + timedelta(hours=12), 2.0e20)  # half inside the day
    period = cluster_period(CLUSTER, (job,), DAY, DAY + timedelta(days=1))
    ceiling = hardware_ceiling("ml.p5.48xlarge", 1, 86400).flops
    assert period.ceiling_flops == pytest.approx(ceiling) and period.instance_seconds == 86400
    assert period.reported_flops == pytest.approx(1.0e20)
    assert period.gap_flops == pytest.approx(ceiling - 1.0e20) and period.coverage == pytest.approx(1.0e20 / ceiling)
    assert any("pro rata" in w for w in period.warnings) and any("ListClusterNodes" in w for w in period.warnings)


def test_a_node_launched_during_the_day_counts_from_its_launch_and_the_gap_is_never_negative() -> None:
    late = ClusterInventory(
        "c", "arn", frozenset(), (Node("i-0123456789abcdef0", "ml.p5.48xlarge", DAY + timedelta(hours=18)),)
    )
    over = ReportedShare("8", DAY + timedelta(hours=18), DAY + timedelta(hours=20), 1.0e30)
    period = cluster_period(late, (over,), DAY, DAY + timedelta(days=1))
    assert period.instance_seconds == 6 * 3600
    assert period.gap_flops == 0 and period.reported_flops > period.ceiling_flops
    assert any("exceed the ceiling" in w for w in period.warnings)


def test_a_job_outside_the_day_counts_nothing_in_it() -> None:
    before = ReportedShare("9", DAY - timedelta(days=2), DAY - timedelta(days=1), 5.0e20)
    period = cluster_period(CLUSTER, (before,), DAY, DAY + timedelta(days=1))
    assert period.jobs == () and period.reported_flops == 0 and period.gap_flops == period.ceiling_flops
