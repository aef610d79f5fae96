"""The HyperPod function (issue 26 point 3) over fakes: a report's sender is SQS's SenderId, never the body; a refused
report is dead-lettered with its reason on its first delivery; a malformed one too; the schedule compares yesterday."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from flopsmeter import contract
from flopsmeter.aws.dead_letters import DeadLetterQueue
from flopsmeter.errors import MalformedEvent
from flopsmeter.functions import hyperpod
from flopsmeter.functions.hyperpod_models import HyperPodReportBody, parse_report
from tests.support.fakes import DLQ_URL, END, FakeSqs, World
from tests.support.hyperpod import ACCOUNT, NODE_ROLE_ID, NODES, FakeClusters, inventory
from tests.support.lambda_context import lambda_context, scheduled_event, sqs_event

START = END - timedelta(hours=6)


def body(**changes: Any) -> str:
    report = {
        "kind": contract.HYPERPOD_REPORT_KIND, "version": 1, "cluster": "research", "orchestrator": "slurm",
        "job_id": "4242", "caller_arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/HyperPodNodeRole/{NODES[0]}",
        "status": "Completed", "start_time": START.isoformat(), "end_time": END.isoformat(),
        "instance_type": "ml.p5.48xlarge", "node_count": 2, "cumulative_flops": 1.0e21, "meter_incomplete": 0,
        "settings": {contract.ENV_BASE_MODEL: "meta-llama/Llama-3.1-8B"}, "unknown_future_field": True,
    }  # fmt: skip
    return json.dumps(report | changes)


def event(text: str, sender_id: str) -> dict[str, Any]:
    built = sqs_event(text)
    built["Records"][0]["attributes"]["SenderId"] = sender_id
    return built


@pytest.fixture
def setup() -> tuple[World, FakeSqs, hyperpod.Handler]:
    world, sqs = World(), FakeSqs()
    clusters = FakeClusters(clusters={"research": inventory(START - timedelta(days=2))})
    container = hyperpod.HyperPodContainer(world.deps, world.config, clusters, ACCOUNT, "us-east-1",
                                           dead_letters=DeadLetterQueue(sqs, DLQ_URL))  # fmt: skip
    return world, sqs, hyperpod.handler_for(lambda: container)


def test_a_report_is_recorded_under_its_sqs_sender(setup) -> None:
    world, sqs, handler = setup
    reply = handler(event(body(), f"{NODE_ROLE_ID}:{NODES[0]}"), lambda_context("flopsmeter-hyperpod"))
    assert reply == {"batchItemFailures": []} and sqs.sent == []
    [key] = [k for k in world.store.objects if k.startswith("records/")]
    assert key.endswith("hyperpod.research.4242.json")


@pytest.mark.parametrize(
    ("text", "sender", "error"),
    [
        (body(), f"AROAANOTHERROLEID0001:{NODES[0]}", "UntrustedReport"),  # the body's role did not send it
        (body(kind="something else"), f"{NODE_ROLE_ID}:{NODES[0]}", "MalformedEvent"),
        (body(job_id="a.b"), f"{NODE_ROLE_ID}:{NODES[0]}", "MalformedEvent"),
        (body(cluster="unknown"), f"{NODE_ROLE_ID}:{NODES[0]}", "ClusterNotFound"),
    ],
)
def test_a_refused_report_is_dead_lettered_at_once_with_its_reason(setup, text, sender, error) -> None:
    world, sqs, handler = setup
    reply = handler(event(text, sender), lambda_context("flopsmeter-hyperpod"))
    assert reply == {"batchItemFailures": []}  # handled: it is in the DLQ with why
    [sent] = sqs.sent
    assert sent["MessageAttributes"][contract.DLQ_ATTR_ERROR]["StringValue"] == error
    assert not [k for k in world.store.objects if k.startswith("records/")]


def test_the_schedule_compares_yesterday(setup, monkeypatch) -> None:
    world, _, handler = setup
    reply = handler(scheduled_event(END), lambda_context("flopsmeter-hyperpod"))
    assert reply["clusters"] == 1 and reply["with_gap"] == 1
    assert [k for k in world.store.objects if k.startswith("clusters/v1/")]


def test_the_edge_model_spells_the_contracts_kind_and_refuses_what_it_cannot_read() -> None:
    assert HyperPodReportBody.model_fields["kind"].annotation.__args__ == (contract.HYPERPOD_REPORT_KIND,)
    report = parse_report(body())
    assert report.figures.cumulative_flops == 1.0e21 and report.settings[contract.ENV_BASE_MODEL]
    for bad in (body(start_time="2026-11-20T00:00:00"), body(end_time=(START - timedelta(hours=1)).isoformat()),
                body(node_count=0), "not json"):  # fmt: skip
        with pytest.raises(MalformedEvent, match="not a HyperPod job report"):
            parse_report(bad)
