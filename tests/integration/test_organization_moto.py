"""Issue 14 (runtime): the classifier across accounts on moto. A member account's job is read through the member's
reader role (moto keys accounts by the assumed role's credentials) and recorded in the compliance account's
bucket under ``account=<member>``; a member without the role is retried, then dead-lettered on the last delivery
with the role and the reason; once the role exists the redriven message is classified.

Emulated: moto's AssumeRole accepts any role; ``flopsmeter.local.moto_ext.sts`` refuses a missing member reader
role as AWS does.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from flopsmeter import contract
from flopsmeter.audit.keys import record_key
from flopsmeter.aws.dead_letters import DeadLetterQueue
from flopsmeter.aws.sessions import AccountSessions
from flopsmeter.functions import classifier
from flopsmeter.functions.container import AccountScope, ClassifierContainer
from flopsmeter.local.runner import lambda_sqs_event
from tests.support.lambda_context import lambda_context
from tests.support.moto_world import ACCOUNT, REGION, state_change
from tests.support.org_world import ROLE, create_reader_role, forwarded, member_client, member_job

MEMBER, MISSING = "111111111111", "222222222222"
MAX_RECEIVES = 3  # the moto world's classifier queue redrive policy


@pytest.fixture
def org(aws: Any) -> Any:
    deps = aws.deps()
    sessions = AccountSessions(boto3.client("sts", region_name=REGION), role_name=ROLE, build_client=member_client)
    container = ClassifierContainer(
        deps,
        aws.config,
        DeadLetterQueue(aws["sqs"], aws.dlq),
        accounts=AccountScope(deps, sessions),
        max_receive_count=MAX_RECEIVES,
    )
    aws.handler = classifier.handler_for(lambda: container)
    return aws


def deliver(aws: Any) -> list[dict[str, Any]]:
    """One receive of the classifier queue, handed to the function; deletes what did not fail; the failures."""
    messages = (
        aws["sqs"]
        .receive_message(QueueUrl=aws.classifier_queue, MaxNumberOfMessages=10, AttributeNames=["All"])
        .get("Messages", [])
    )
    event = lambda_sqs_event(messages, queue_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:classifier", region=REGION)
    failures = aws.handler(event, lambda_context())["batchItemFailures"] if messages else []
    failed = {f["itemIdentifier"] for f in failures}
    for m in messages:
        if m["MessageId"] not in failed:
            aws["sqs"].delete_message(QueueUrl=aws.classifier_queue, ReceiptHandle=m["ReceiptHandle"])
    return failures


def test_a_member_accounts_job_is_recorded_in_the_compliance_bucket(org: Any) -> None:
    create_reader_role(MEMBER)
    end = member_job(MEMBER, "member-job", org)
    org["sqs"].send_message(QueueUrl=org.classifier_queue, MessageBody=forwarded("member-job", MEMBER))
    assert deliver(org) == []
    stored = org.store.get_record(record_key(MEMBER, REGION, end, "member-job"))
    assert stored.job.arn.split(":")[4] == MEMBER
    assert stored.cloudtrail.status == "found"  # CloudTrail read in the member account, through its role
    with pytest.raises(ClientError):
        org["sagemaker"].describe_training_job(TrainingJobName="member-job")  # not in the compliance account


def test_a_member_without_the_role_is_retried_then_dead_lettered_with_why_then_redriven(org: Any) -> None:
    end = member_job(MISSING, "orphan-job", org)
    org["sqs"].send_message(QueueUrl=org.classifier_queue, MessageBody=forwarded("orphan-job", MISSING))
    for _ in range(MAX_RECEIVES - 1):
        assert len(deliver(org)) == 1  # transient: left on the queue
        assert not org.messages(org.dlq)
    assert deliver(org) == []  # the last delivery: the function dead-letters it itself
    (letter,) = org["sqs"].receive_message(QueueUrl=org.dlq, MessageAttributeNames=["All"])["Messages"]
    attributes = {k: v["StringValue"] for k, v in letter["MessageAttributes"].items()}
    assert attributes[contract.DLQ_ATTR_ERROR] == "MemberRoleUnavailable"
    reason = attributes[contract.DLQ_ATTR_REASON]
    assert f"arn:aws:iam::{MISSING}:role/{ROLE}" in reason and "AccessDenied" in reason
    assert attributes[contract.DLQ_ATTR_RECEIVE_COUNT] == str(MAX_RECEIVES)

    create_reader_role(MISSING)  # the StackSet instance is deployed; redrive
    org["sqs"].send_message(QueueUrl=org.classifier_queue, MessageBody=letter["Body"])
    org["sqs"].delete_message(QueueUrl=org.dlq, ReceiptHandle=letter["ReceiptHandle"])
    assert deliver(org) == []
    assert org.store.exists(record_key(MISSING, REGION, end, "orphan-job"))


def test_the_compliance_accounts_own_job_is_read_with_its_own_credentials(org: Any) -> None:
    end = org.job("home-job")
    org["sqs"].send_message(QueueUrl=org.classifier_queue, MessageBody=state_change("home-job"))
    assert deliver(org) == []
    assert org.store.exists(record_key(ACCOUNT, REGION, end, "home-job"))


def naive_last_modified(account: str, name: str) -> None:
    """As tests/integration/test_reconciler_moto.py: moto's ListTrainingJobs filter compares naive times."""
    from moto.sagemaker.models import sagemaker_backends

    job = sagemaker_backends[account][REGION].training_jobs[name]
    job.last_modified_time = job.last_modified_time.replace(tzinfo=None)


def test_the_reconciler_takes_one_member_account_per_run_round_robin(aws: Any) -> None:
    """The reconciler function in organization mode, wired from its settings as the stack sets them."""
    import logging

    from flopsmeter.functions import reconciler
    from flopsmeter.functions.container import build_reconciler
    from flopsmeter.functions.settings import ReconcilerSettings
    from tests.support.moto_world import BUCKET

    create_reader_role(MEMBER)
    end = member_job(MEMBER, "lost-member-event", aws)
    naive_last_modified(MEMBER, "lost-member-event")
    cursor = "/flopsmeter/test/reconciler/cursor"
    settings = ReconcilerSettings.from_env(
        {
            "AUDIT_BUCKET_NAME": BUCKET,
            "DEPLOYMENT_MODE": "organization",
            "MEMBER_ROLE_NAME": ROLE,
            "MEMBER_ACCOUNTS": f"{MEMBER},{MISSING}",
            "RECONCILE_ACCOUNTS_PER_RUN": "1",
            "RECONCILE_CURSOR_PARAMETER": cursor,
        }
    )

    def clients(service: str) -> Any:
        return aws.clients.get(service) or boto3.client(service, region_name=REGION)

    container = build_reconciler(
        settings, clients, metrics=aws.metrics, log=logging.getLogger("flopsmeter.it"), member_clients=member_client
    )
    handler = reconciler.handler_for(lambda: container)
    runs = [handler({"source": "aws.events"}, lambda_context()) for _ in range(3)]
    assert [r["visited"] for r in runs] == [[MEMBER], [MISSING], [MEMBER]]
    assert runs[0]["recorded"] == ["lost-member-event"]
    assert aws.store.exists(record_key(MEMBER, REGION, end, "lost-member-event"))
    (why,) = runs[1]["unreachable"].values()
    assert "AccessDenied" in why and f"arn:aws:iam::{MISSING}:role/{ROLE}" in why
    assert runs[2]["recorded"] == [] and runs[2]["already_recorded"] == 1
    stored = boto3.client("ssm", region_name=REGION).get_parameter(Name=cursor)["Parameter"]["Value"]
    assert json.loads(stored) == {"next": 1, "retry": []}  # the fourth run starts with the second account
