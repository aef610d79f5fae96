"""Issue 14: the classifier function when a member account's reader role cannot be assumed (fakes, no AWS):
retried with the AssumeRoleFailed metric, then dead-lettered by the function itself on the queue's last delivery
with the role and the reason."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from flopsmeter import contract
from flopsmeter.aws.sessions import AccountSessions
from flopsmeter.functions import classifier
from flopsmeter.functions.container import AccountScope
from tests.support.fakes import FakeMetrics, FakeSqs, World
from tests.support.lambda_context import event_text, sqs_event

MEMBER = "222222222222"
ROLE = contract.member_reader_role_name("prod")
MAX_RECEIVES = 4


class RefusingSts:
    def __init__(self) -> None:
        self.calls = 0

    def assume_role(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "AssumeRole")

    def get_caller_identity(self) -> dict[str, str]:
        return {"Account": "123456789012"}


@pytest.fixture
def sts() -> RefusingSts:
    return RefusingSts()


@pytest.fixture
def org(world: World, dlq: FakeSqs, sts: RefusingSts) -> World:
    sessions = AccountSessions(sts, role_name=ROLE, build_client=lambda *a: pytest.fail("no client without a role"))
    world.container = dataclasses.replace(
        world.container, accounts=AccountScope(world.deps, sessions), max_receive_count=MAX_RECEIVES
    )
    return world


@pytest.fixture
def handler_metrics(handler: classifier.Handler, monkeypatch: pytest.MonkeyPatch) -> FakeMetrics:
    fake = FakeMetrics()
    monkeypatch.setattr(classifier, "metrics", fake)
    return fake


def member_body() -> str:
    event = json.loads(event_text("training_job_completed.json"))
    event["account"] = MEMBER
    return json.dumps(event)


def test_retried_with_the_metric_until_the_last_delivery(org, dlq, context, handler, handler_metrics, sts) -> None:
    for receive in range(1, MAX_RECEIVES):
        response = handler(sqs_event(member_body(), receive_count=receive), context)
        assert len(response["batchItemFailures"]) == 1  # transient: SQS redelivers it
    assert dlq.sent == [] and handler_metrics.counts["AssumeRoleFailed"] == MAX_RECEIVES - 1
    assert sts.calls == MAX_RECEIVES - 1  # a failed assume is never cached: each delivery tries again
    assert org.store.objects == {}


def test_dead_lettered_with_the_role_and_the_reason_on_the_last_delivery(
    org, dlq, context, handler, handler_metrics
) -> None:
    response = handler(sqs_event(member_body(), receive_count=MAX_RECEIVES), context)
    assert response == {"batchItemFailures": []}  # handled: in the DLQ with why
    (sent,) = dlq.sent
    attrs = {k: v["StringValue"] for k, v in sent["MessageAttributes"].items()}
    assert attrs[contract.DLQ_ATTR_ERROR] == "MemberRoleUnavailable"
    assert f"arn:aws:iam::{MEMBER}:role/{ROLE}" in attrs[contract.DLQ_ATTR_REASON]
    assert "AccessDenied" in attrs[contract.DLQ_ATTR_REASON]
    assert attrs[contract.DLQ_ATTR_RECEIVE_COUNT] == str(MAX_RECEIVES)
    assert handler_metrics.counts == {"AssumeRoleFailed": 1, "DeadLettered": 1}


def test_the_compliance_accounts_own_event_never_assumes_a_role(org, context, handler, sts) -> None:
    org.jobs.add("llama3-8b-sft-001")
    org.trail.add("llama3-8b-sft-001")
    body = json.loads(event_text("training_job_completed.json"))
    body["account"] = "123456789012"
    assert handler(sqs_event(json.dumps(body)), context) == {"batchItemFailures": []}
    assert sts.calls == 0
    assert [k for k in org.store.objects if k.startswith("records/")] == [
        "records/v1/account=123456789012/region=eu-west-1/date=2026-11-20/llama3-8b-sft-001.json"
    ]
