"""Issue 24 (organization mode, runtime) on moto: every job is read in its event's own account and region, and one
member account's failing job listing never stops the reconciler.

* Same-named jobs in two regions (the compliance account's own and a member's) are each recorded from their own
  region: the record's ARN, region and instance type are that region's job's.
* A job in a region outside ``member_regions`` is dead-lettered on the first delivery with ``RegionNotServed`` and a
  reason that says what to change, and an alert goes to the topic; nothing is read elsewhere, no record is written.
* The reconciler (built from its settings, cursor in SSM) with one member whose ListTrainingJobs is throttled
  (then refused): the other members are reconciled, the cursor advances and names the failing member, which the
  next run visits first; once the fault passes its job is recorded.

Emulated: moto keeps each account and region apart; the fault is injected on the member's own SageMaker client
(``tests.support.moto_world.inject_faults``), below our adapters.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import boto3
import pytest

from flopsmeter import contract
from flopsmeter.audit.keys import record_key
from flopsmeter.aws.dead_letters import DeadLetterQueue
from flopsmeter.aws.sessions import AccountSessions
from flopsmeter.functions import classifier, reconciler
from flopsmeter.functions.container import AccountScope, ClassifierContainer, build_reconciler
from flopsmeter.functions.settings import ReconcilerSettings
from flopsmeter.local.runner import lambda_sqs_event
from tests.support.lambda_context import lambda_context
from tests.support.moto_world import ACCOUNT, BUCKET, REGION, inject_faults
from tests.support.org_world import ROLE, create_reader_role, forwarded, member_client, member_job

OTHER = "eu-central-1"  # a second member region
ELSEWHERE = "ap-southeast-2"  # a region no stack serves
MEMBERS = ("111111111111", "222222222222", "333333333333")


def naive_last_modified(account: str, region: str, name: str) -> None:
    """As tests/integration/test_reconciler_moto.py: moto's ListTrainingJobs filter compares naive times."""
    from moto.sagemaker.models import sagemaker_backends

    job = sagemaker_backends[account][region].training_jobs[name]
    job.last_modified_time = job.last_modified_time.replace(tzinfo=None)


@pytest.fixture
def org(aws: Any) -> Any:
    """The classifier in organization mode, serving its own region and one more member region."""
    deps = aws.deps()
    sessions = AccountSessions(
        boto3.client("sts", region_name=REGION), role_name=ROLE, build_client=member_client, home_account=ACCOUNT
    )
    scope = AccountScope(deps, sessions, home_region=REGION, member_regions=(REGION, OTHER))
    container = ClassifierContainer(deps, aws.config, DeadLetterQueue(aws["sqs"], aws.dlq), accounts=scope)
    aws.handler = classifier.handler_for(lambda: container)
    return aws


def deliver(aws: Any, body: str) -> list[dict[str, Any]]:
    aws["sqs"].send_message(QueueUrl=aws.classifier_queue, MessageBody=body)
    messages = aws["sqs"].receive_message(QueueUrl=aws.classifier_queue, AttributeNames=["All"])["Messages"]
    event = lambda_sqs_event(messages, queue_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:classifier", region=REGION)
    failures: list[dict[str, Any]] = aws.handler(event, lambda_context())["batchItemFailures"]
    for m in messages:
        if m["MessageId"] not in {f["itemIdentifier"] for f in failures}:
            aws["sqs"].delete_message(QueueUrl=aws.classifier_queue, ReceiptHandle=m["ReceiptHandle"])
    return failures


@pytest.mark.parametrize("account", [ACCOUNT, MEMBERS[0]], ids=["compliance-account", "member-account"])
def test_same_named_jobs_in_two_regions_are_each_recorded_from_their_own_region(org: Any, account: str) -> None:
    create_reader_role(account)  # the member stack's reader role (in the compliance account too, when it is a member)
    end = member_job(account, "same-name", org, region=REGION, instance_type="ml.g5.xlarge")
    member_job(account, "same-name", org, region=OTHER, instance_type="ml.p4d.24xlarge")
    assert deliver(org, forwarded("same-name", account, OTHER, "ml.p4d.24xlarge")) == []
    assert deliver(org, forwarded("same-name", account, REGION, "ml.g5.xlarge")) == []
    there = org.store.get_record(record_key(account, OTHER, end, "same-name"))
    here = org.store.get_record(record_key(account, REGION, end, "same-name"))
    assert there.job.arn == f"arn:aws:sagemaker:{OTHER}:{account}:training-job/same-name"
    assert here.job.arn == f"arn:aws:sagemaker:{REGION}:{account}:training-job/same-name"
    assert (there.job.instance_type, here.job.instance_type) == ("ml.p4d.24xlarge", "ml.g5.xlarge")
    assert there.cloudtrail.status == here.cloudtrail.status == "found"  # each region's own CreateTrainingJob
    assert there.cloudtrail.event_id != here.cloudtrail.event_id
    assert not org.messages(org.dlq)


def test_a_job_in_a_region_no_stack_serves_is_dead_lettered_with_why_and_an_alert(org: Any) -> None:
    create_reader_role(MEMBERS[0])
    member_job(MEMBERS[0], "far-away", org, region=ELSEWHERE)
    member_job(MEMBERS[0], "far-away", org, region=REGION)  # a same-named job where we do read: not taken instead
    assert deliver(org, forwarded("far-away", MEMBERS[0], ELSEWHERE)) == []  # handled: dead-lettered at once
    (letter,) = org["sqs"].receive_message(QueueUrl=org.dlq, MessageAttributeNames=["All"])["Messages"]
    attributes = {k: v["StringValue"] for k, v in letter["MessageAttributes"].items()}
    assert attributes[contract.DLQ_ATTR_ERROR] == "RegionNotServed"
    reason = attributes[contract.DLQ_ATTR_REASON]
    assert ELSEWHERE in reason and f"{REGION}, {OTHER}" in reason and "member_regions" in reason
    (alert,) = org.messages(org.alerts_queue)
    assert ELSEWHERE in alert["Subject"] and "far-away" in alert["Message"]
    assert alert["MessageAttributes"]["outcome"]["Value"] == "region_not_served"
    assert org.metrics.counts[contract.ServiceMetric.REGION_NOT_SERVED] == 1
    assert not list(org.store.list_keys("records/"))


def test_a_single_account_deployment_serves_its_own_region_only(aws: Any) -> None:
    deps = aws.deps()
    scope = AccountScope(deps, home_region=REGION)
    container = ClassifierContainer(deps, aws.config, DeadLetterQueue(aws["sqs"], aws.dlq), accounts=scope)
    aws.handler = classifier.handler_for(lambda: container)
    member_job(ACCOUNT, "elsewhere", aws, region=OTHER)
    member_job(ACCOUNT, "elsewhere", aws, region=REGION)
    assert deliver(aws, forwarded("elsewhere", ACCOUNT, OTHER)) == []
    (letter,) = aws.messages(aws.dlq)
    assert letter["region"] == OTHER
    assert not list(aws.store.list_keys("records/"))
    assert aws.metrics.counts[contract.ServiceMetric.REGION_NOT_SERVED] == 1


def test_a_member_whose_listing_fails_never_stops_the_reconciler(aws: Any) -> None:
    """MEMBERS[1]'s ListTrainingJobs is throttled (every retry), then refused; the others are reconciled."""
    for account in MEMBERS:
        create_reader_role(account)
        for region in (REGION, OTHER):
            member_job(account, f"lost-{account[:3]}", aws, region=region)
            naive_last_modified(account, region, f"lost-{account[:3]}")
    cursor = "/flopsmeter/test/reconciler/cursor"
    settings = ReconcilerSettings.from_env(
        {
            "AUDIT_BUCKET_NAME": BUCKET,
            "DEPLOYMENT_MODE": "organization",
            "MEMBER_ROLE_NAME": ROLE,
            "MEMBER_ACCOUNTS": ",".join(MEMBERS),
            "MEMBER_REGIONS": f"{REGION},{OTHER}",
            "RECONCILE_ACCOUNTS_PER_RUN": "2",
            "RECONCILE_CURSOR_PARAMETER": cursor,
        }
    )
    faults: dict[str, str] = {"code": "ThrottlingException"}

    def member(credentials: dict[str, Any], service: str, region: str | None) -> Any:
        client = member_client(credentials, service, region)
        owner = boto3.client("sts", **_creds(credentials)).get_caller_identity()["Account"]
        if service == "sagemaker" and owner == MEMBERS[1] and faults["code"]:
            inject_faults(client, "ListTrainingJobs", times=1000, code=faults["code"])
        return client

    def clients(service: str) -> Any:
        return aws.clients.get(service) or boto3.client(service, region_name=REGION)

    log = logging.getLogger("flopsmeter.it")
    handler = reconciler.handler_for(
        lambda: build_reconciler(settings, clients, metrics=aws.metrics, log=log, member_clients=member)
    )
    ssm = boto3.client("ssm", region_name=REGION)

    first = handler({"source": "aws.events"}, lambda_context())
    assert first["visited"] == list(MEMBERS[:2])
    assert sorted(first["failed_accounts"]) == [f"{MEMBERS[1]}/{OTHER}", f"{MEMBERS[1]}/{REGION}"]
    assert "ThrottlingException" in first["failed_accounts"][f"{MEMBERS[1]}/{REGION}"]
    assert first["recorded"] == ["lost-111", "lost-111"]  # both regions of the healthy member
    assert json.loads(ssm.get_parameter(Name=cursor)["Parameter"]["Value"]) == {"next": 2, "retry": [MEMBERS[1]]}
    assert aws.metrics.counts[contract.ServiceMetric.RECONCILE_FAILED] == 2

    faults["code"] = "AccessDeniedException"  # a missing list permission now
    second = handler({"source": "aws.events"}, lambda_context())
    assert second["retried"] == [MEMBERS[1]] and second["visited"] == [MEMBERS[1], MEMBERS[2], MEMBERS[0]]
    assert "AccessDenied" in second["failed_accounts"][f"{MEMBERS[1]}/{REGION}"]
    assert second["recorded"] == ["lost-333", "lost-333"]
    assert json.loads(ssm.get_parameter(Name=cursor)["Parameter"]["Value"]) == {"next": 1, "retry": [MEMBERS[1]]}

    faults["code"] = ""  # fixed (new sessions' clients carry no fault)
    third = handler({"source": "aws.events"}, lambda_context())
    assert third["failed_accounts"] == {} and third["recorded"] == ["lost-222", "lost-222"]
    for account in MEMBERS:
        for region in (REGION, OTHER):
            key = record_key(account, region, aws.t0 + timedelta(hours=1), f"lost-{account[:3]}")
            assert aws.store.exists(key), key


def _creds(credentials: dict[str, Any]) -> dict[str, Any]:
    return {
        "region_name": REGION,
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }


def test_a_member_accounts_job_in_the_compliance_region_outside_member_regions_is_not_served(aws: Any) -> None:
    deps = aws.deps()
    sessions = AccountSessions(
        boto3.client("sts", region_name=REGION), role_name=ROLE, build_client=member_client, home_account=ACCOUNT
    )
    scope = AccountScope(deps, sessions, home_region=REGION, member_regions=(OTHER,))  # members in OTHER only
    container = ClassifierContainer(deps, aws.config, DeadLetterQueue(aws["sqs"], aws.dlq), accounts=scope)
    aws.handler = classifier.handler_for(lambda: container)
    create_reader_role(MEMBERS[0])
    member_job(MEMBERS[0], "home-region-job", aws, region=REGION)

    assert deliver(aws, forwarded("home-region-job", MEMBERS[0], REGION)) == []  # dead-lettered at once

    (letter,) = aws["sqs"].receive_message(QueueUrl=aws.dlq, MessageAttributeNames=["All"])["Messages"]
    attributes = {k: v["StringValue"] for k, v in letter["MessageAttributes"].items()}
    assert attributes[contract.DLQ_ATTR_ERROR] == "RegionNotServed"  # not an AccessDenied retried to the DLQ
    assert (
        f"({OTHER})" in attributes[contract.DLQ_ATTR_REASON]
        and "member_regions" in attributes[contract.DLQ_ATTR_REASON]
    )
    assert not list(aws.store.list_keys("records/"))
