"""A HyperPod job reported by its meter (issue 26 point 3): recorded only when the SQS sender is confirmed and tied to
the cluster, with the ``reported`` method; a cluster's day compared with what its jobs reported."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from flopsmeter.audit.cluster_record import ClusterPeriodRecord
from flopsmeter.audit.keys import parse_cluster_period_key
from flopsmeter.audit.record import stored_sha256_matches
from flopsmeter.contract import ENV_BASE_MODEL, ServiceMetric
from flopsmeter.domain.hyperpod import ClusterInventory
from flopsmeter.errors import ClusterNotFound
from flopsmeter.service.hyperpod import UntrustedReport, record_report
from flopsmeter.service.hyperpod_clusters import compare_clusters
from tests.support.fakes import END, World
from tests.support.hyperpod import ACCOUNT, NODE_ROLE_ID, NODES, FakeClusters, inventory, message

START = END - timedelta(hours=6)


@pytest.fixture
def clusters() -> FakeClusters:
    return FakeClusters(clusters={"research": inventory(START - timedelta(days=2))})


def test_a_report_from_a_cluster_node_is_recorded_with_the_reported_method(world: World, clusters) -> None:
    result = record_report(message(START, END, settings={ENV_BASE_MODEL: "meta-llama/Llama-3.1-8B"}), world.deps,
                           clusters, world.config)  # fmt: skip

    assert result.status == "recorded" and result.key is not None
    assert result.key.endswith("/date=2026-11-20/hyperpod.research.4242.json") and f"account={ACCOUNT}/" in result.key
    record = result.record
    assert record is not None and record.flops.method == "reported" and record.flops.classified_flops == 1.0e21
    assert record.flops.metered_channel == "hyperpod_report" and record.base_model.model_id == "meta-llama/Llama-3.1-8B"
    assert record.hyperpod is not None and record.hyperpod.link == "node" and record.hyperpod.session == NODES[0]
    assert record.hyperpod.sender_id == f"{NODE_ROLE_ID}:{NODES[0]}" and record.hyperpod.submitted_by == "dana"
    assert record.job.arn.endswith(":cluster/abc123/job/4242") and record.job.instance_count == 2
    assert record.cloudtrail.status == "not_found" and "HyperPod" in (record.cloudtrail.reason or "")
    assert stored_sha256_matches(json.loads(world.store.objects[result.key]))  # sealed over what it says
    again = record_report(message(START, END), world.deps, clusters, world.config)
    assert again.status == "duplicate" and len([k for k in world.store.objects if k.startswith("records/")]) == 1


def test_a_pod_role_is_tied_to_the_cluster_by_its_tag(world: World, clusters) -> None:
    clusters.roles["TrainerPodRole"] = ("AROAEXAMPLEPODROLE001", {"flopsmeter:hyperpod-cluster": "research"})
    report = message(START, END, role="TrainerPodRole", session="botocore-session-1",
                     sender_id="AROAEXAMPLEPODROLE001:botocore-session-1")  # fmt: skip
    result = record_report(report, world.deps, clusters, world.config)
    assert result.record is not None and result.record.hyperpod is not None
    assert result.record.hyperpod.link == "role_tag"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"sender_id": f"AROAANOTHERROLEID0001:{NODES[0]}"}, "not by"),  # the body names a role that did not send it
        ({"sender_id": "AIDAEXAMPLEUSER000001"}, "not an IAM role session"),
        ({"sender_id": f"{NODE_ROLE_ID}:someone"}, "another session"),
    ],
)
def test_a_report_whose_sender_cannot_be_confirmed_writes_nothing(world: World, clusters, changes, reason) -> None:
    with pytest.raises(UntrustedReport, match=reason):
        record_report(message(START, END, **changes), world.deps, clusters, world.config)
    assert world.store.objects == {}


def test_a_role_not_tied_to_the_cluster_is_refused(world: World, clusters) -> None:
    clusters.roles["NotebookRole"] = ("AROAEXAMPLENOTEBOOK01", {})
    report = message(START, END, role="NotebookRole", session="alice", sender_id="AROAEXAMPLENOTEBOOK01:alice")
    with pytest.raises(UntrustedReport, match="not tied to cluster research"):
        record_report(report, world.deps, clusters, world.config)
    with pytest.raises(ClusterNotFound):
        record_report(message(START, END), world.deps, FakeClusters(), world.config)


def test_a_meter_that_says_it_is_incomplete_leaves_the_job_on_its_nodes_ceiling(world: World, clusters) -> None:
    result = record_report(message(START, END, flops=1.0e18, incomplete=1.0), world.deps, clusters, world.config)
    record = result.record
    assert record is not None and record.flops.method == "hardware_ceiling"
    assert record.flops.classified_flops == record.flops.hardware_ceiling.flops > 1.0e18
    assert any("the report's claim" in w for w in record.warnings)


def test_a_clusters_day_records_the_gap_no_report_covers(world: World, clusters) -> None:
    record_report(message(END - timedelta(hours=30), END - timedelta(hours=18)), world.deps, clusters, world.config)
    day = (END - timedelta(days=1)).date()

    [result] = compare_clusters(clusters, world.store, account_id=ACCOUNT, region="us-east-1", day=day, now=END,
                                metrics=world.metrics, log=world.deps.log)  # fmt: skip

    assert parse_cluster_period_key(result.key) == (ACCOUNT, "us-east-1", day, "research") and result.written
    stored = ClusterPeriodRecord.model_validate(json.loads(world.store.objects[result.key]))
    assert stored == result.record and stored.sha256 == stored.sealed().sha256
    assert stored.status == "gap" and stored.instance_hours == 48 and [j.job_id for j in stored.jobs] == ["4242"]
    assert stored.reported_flops == pytest.approx(1.0e21) and stored.unreported_flops == stored.ceiling_flops - 1.0e21
    assert world.metrics.counts[ServiceMetric.CLUSTER_UNREPORTED_FLOPS] == int(stored.unreported_flops)
    again = compare_clusters(clusters, world.store, account_id=ACCOUNT, region="us-east-1", day=day, now=END,
                             metrics=world.metrics, log=world.deps.log)  # fmt: skip
    assert not again[0].written  # written once


def test_a_day_that_is_not_over_is_not_compared(world: World, clusters) -> None:
    with pytest.raises(ValueError, match="not over"):
        compare_clusters(clusters, world.store, account_id=ACCOUNT, region="us-east-1", day=END.date(), now=END,
                         metrics=world.metrics, log=world.deps.log)  # fmt: skip


def test_an_idle_cluster_is_recorded_as_idle(world: World) -> None:
    empty = FakeClusters(
        clusters={"idle": ClusterInventory("idle", "arn:aws:sagemaker:r:1:cluster/i", frozenset(), ())}
    )
    [result] = compare_clusters(empty, world.store, account_id=ACCOUNT, region="us-east-1",
                                day=(END - timedelta(days=1)).date(), now=END, metrics=world.metrics,
                                log=world.deps.log)  # fmt: skip
    assert result.record.status == "idle" and result.record.ceiling_flops == 0
