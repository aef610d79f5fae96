"""SageMaker HyperPod in the template (issue 26 point 3): the reports queue only role sessions of this account may
send to, the HyperPod function on it and on a daily schedule, and IAM that grants the function the new read calls
(clusters, roles) and nothing broader; no other role gains them. Policies are evaluated statement by statement."""

from __future__ import annotations

import pytest

from flopsmeter.audit.keys import CLUSTERS_PREFIX
from infra.constructs.hyperpod import CLUSTERS_ROOT, READ_CALLS, REPORTS_MAX_RECEIVE_COUNT, SCHEDULE
from tests.infra.policy import Request, allows, identity_allows, resolve
from tests.infra.template import (
    HANDLERS,
    Synthesized,
    allowed,
    audit_bucket,
    bucket_policy,
    consumed_queue,
    event_source,
    function,
    resource_policy,
    role_of,
    role_statements,
)

pytestmark = pytest.mark.infra
ACCOUNT = "<AWS::AccountId>"  # this account, as the template's policies name it
NEW_READS = {*READ_CALLS, "sagemaker:ListClusters", "iam:GetRole"}


def _queue_id(synth: Synthesized) -> str:
    mapping = event_source(synth, "hyperpod")
    return str(mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][0])


def test_the_function_consumes_the_reports_queue_with_partial_failures_and_runs_daily(synth: Synthesized) -> None:
    props = event_source(synth, "hyperpod")["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"] and props["BatchSize"] == 10
    queue = consumed_queue(synth, "hyperpod")["Properties"]
    assert (
        queue["SqsManagedSseEnabled"] is True and queue["RedrivePolicy"]["maxReceiveCount"] == REPORTS_MAX_RECEIVE_COUNT
    )
    function_id, fn = function(synth, "hyperpod")
    env = fn["Properties"]["Environment"]["Variables"]
    dlq = queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    assert env["DEAD_LETTER_QUEUE_URL"] == {"Ref": dlq} and "PRIMARY_POLICY" in env and "AUDIT_BUCKET_NAME" in env
    scheduled = [
        r["Properties"]
        for r in synth.of_type("AWS::Events::Rule").values()
        if r["Properties"].get("ScheduleExpression") == SCHEDULE.expression_string
    ]
    assert [t["Arn"] for r in scheduled for t in r["Targets"]] == [{"Fn::GetAtt": [function_id, "Arn"]}]
    assert synth.template["Outputs"]["HyperPodReportQueueUrl"]["Value"] == {"Ref": _queue_id(synth)}


def test_only_role_sessions_of_this_account_may_send_reports(synth: Synthesized) -> None:
    document = resolve(resource_policy(synth, "AWS::SQS::QueuePolicy", "Queues", _queue_id(synth)))
    queue_arn = f"<{_queue_id(synth)}.Arn>"

    def send(principal: str, principal_type: str, account: str = ACCOUNT) -> bool:
        context = {"aws:PrincipalAccount": account, "aws:PrincipalType": principal_type, "aws:SecureTransport": "true"}
        return allows(document, Request(principal, "sqs:SendMessage", queue_arn, context))

    node = f"arn:aws:sts::{ACCOUNT}:assumed-role/HyperPodNodeRole/i-0123456789abcdef0"
    assert send(node, "AssumedRole")
    assert not send(f"arn:aws:iam::{ACCOUNT}:user/alice", "User")  # SenderId would be a user id: refused here
    assert not send("arn:aws:sts::210987654321:assumed-role/Other/x", "AssumedRole", account="210987654321")
    assert not allows(document, Request(node, "sqs:SendMessage", queue_arn, {"aws:PrincipalAccount": ACCOUNT,
                      "aws:PrincipalType": "AssumedRole", "aws:SecureTransport": "false"}))  # fmt: skip


def test_the_function_gets_the_new_read_calls_and_writes_only_its_records_and_cluster_periods(
    synth: Synthesized,
) -> None:
    bucket_id, _ = audit_bucket(synth)
    statements = role_statements(synth, role_of(synth, "hyperpod"))
    pairs = allowed(statements)
    reads = {a for a, _ in pairs if a.split(":")[0] in {"sagemaker", "iam"}}
    assert reads == NEW_READS | {"sagemaker:DescribeTrainingJob", "sagemaker:ListTags"}
    resources = {a: str(r) for a, r in pairs if a in NEW_READS}
    assert resources["sagemaker:DescribeCluster"].endswith(":cluster/*")
    assert resources["iam:GetRole"].endswith(":role/*") and resources["sagemaker:ListClusters"] == "*"
    writes = {str(r) for a, r in pairs if a == "s3:PutObject"}
    assert writes == {f"<{bucket_id}.Arn>/records/*/hyperpod.*", f"<{bucket_id}.Arn>/{CLUSTERS_ROOT}*"}
    assert not {a for a, _ in pairs} & {"cloudwatch:GetMetricData", "cloudtrail:LookupEvents", "s3:DeleteObject"}
    training_record = f"<{bucket_id}.Arn>/records/v1/account={ACCOUNT}/region=r/date=2026-01-01/job.json"
    own = f"<{role_of(synth, 'hyperpod')}.Arn>"
    assert not identity_allows(statements, Request(own, "s3:PutObject", training_record))


def test_no_other_function_gains_the_new_read_calls(synth: Synthesized) -> None:
    for name in set(HANDLERS) - {"hyperpod"}:
        actions = {a for a, _ in allowed(role_statements(synth, role_of(synth, name)))}
        assert not actions & NEW_READS, name


def test_the_bucket_lets_the_function_write_cluster_periods_and_nobody_else(synth: Synthesized) -> None:
    bucket_id, _ = audit_bucket(synth)
    document = bucket_policy(synth, bucket_id)
    key = f"<{bucket_id}.Arn>/{CLUSTERS_PREFIX}account={ACCOUNT}/region=r/date=2026-01-01/c1.json"
    context = {"aws:SecureTransport": "true", "s3:if-none-match": "*"}
    hyperpod, classifier = (f"<{role_of(synth, n)}.Arn>" for n in ("hyperpod", "classifier"))
    denies = [{"Statement": [{**s, "Effect": "Allow"}]} for s in document["Statement"]
              if s["Effect"] == "Deny" and s.get("Sid", "").startswith("DenyWrites")]  # fmt: skip
    denied = {who: any(allows(d, Request(who, "s3:PutObject", key, context)) for d in denies)
              for who in (hyperpod, classifier)}  # fmt: skip
    assert denied == {hyperpod: False, classifier: True}


def test_docs_quote_the_figures_the_template_and_code_use(synth: Synthesized) -> None:
    from pathlib import Path

    from flopsmeter.service.hyperpod_clusters import MAX_LOOKAHEAD_DAYS
    from infra.constructs.hyperpod import REPORTS_MAX_CONCURRENCY

    text = " ".join((Path(__file__).parents[2] / "docs" / "hyperpod.md").read_text().split())
    props = event_source(synth, "hyperpod")["Properties"]
    assert SCHEDULE.expression_string == "cron(20 0 * * ? *)" and "Once a day (00:20 UTC)" in text
    assert f"a dead-letter queue after {REPORTS_MAX_RECEIVE_COUNT} receives" in text
    assert f"in batches of {props['BatchSize']} with at most {props['ScalingConfig']['MaximumConcurrency']}" in text
    assert props["ScalingConfig"]["MaximumConcurrency"] == REPORTS_MAX_CONCURRENCY
    assert f"longer than {MAX_LOOKAHEAD_DAYS} days (`MAX_LOOKAHEAD_DAYS`)" in text
