"""Fault injection on every AWS dependency of the classifier, through the real handler, on moto.

Every fault must end as a retried success (botocore's own retries, or SQS redelivery after a batch-item failure)
or as a dead-letter-queue entry whose reason is logged (and, for a permanent failure the handler dead-letters itself,
attached to the message). Never a silent skip, and never a record less conservative
than a fault-free run of the same job (same method, FLOPs, thresholds and outcome).

Two injection points:
* ``before-send`` (below botocore's retry loop, like a real network fault): connect/read timeouts, refused
  connections and lost responses (moto did the work, the answer timed out), retried by the production client
  config (standard mode, 4 attempts in all; back-off recorded, not slept). A 503 *response* cannot be injected
  there: moto's own ``before-send`` handler would still run the request;
* ``before-call`` (above it, deterministic, protocol-independent): throttling, 5xx and AccessDenied ClientErrors,
  partial ``PutEvents`` failures and an unexpected exception, so the queue's retry / DLQ path is what is tested.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from moto.core.models import botocore_stubber

from flopsmeter import contract
from flopsmeter.audit.keys import notification_key
from flopsmeter.aws.clients import MAX_ATTEMPTS
from tests.support.harness import MAX_RECEIVE_COUNT, Harness, register_hook
from tests.support.moto_world import REGION, inject_faults, state_change

# Every AWS call the classifier makes for a new job, by client.
OPERATIONS = [
    ("sagemaker", "DescribeTrainingJob"),
    ("sagemaker", "ListTags"),
    ("cloudwatch", "GetMetricData"),
    ("cloudtrail", "LookupEvents"),
    ("s3", "HeadObject"),
    ("s3", "PutObject"),
    ("events", "PutEvents"),
    ("sns", "Publish"),
]
# A job big enough to be "approaching" its threshold, so the SNS alert is exercised too: 5e22 metered FLOPs against
# 0.30 x 2e23 = 6e22 (aws-30pct-2026), on 16 x p5.48xlarge for 500 h.
JOB = {"instance_type": "ml.p5.48xlarge", "count": 16, "hours": 500, "environment": {"PRETRAIN_FLOPS": "2e23"}}
METERED = 5.0e22


def conservative_view(record: Any) -> tuple[Any, ...]:
    """What must not get less conservative: method, FLOPs, every policy's threshold/outcome, the primary outcome."""
    return (
        record.flops.method,
        record.flops.classified_flops,
        record.lineage.cumulative_flops,
        record.outcome,
        tuple((c.policy, c.threshold, c.outcome) for c in record.classifications),
    )


def clean_and_faulted(h: Harness, name: str = "job-faulted") -> tuple[Any, str]:
    """Classify a fault-free twin first; set up the job the test will fault. Returns (clean record, faulted key)."""
    for job in ("job-clean", name):
        h.aws.job(job, **JOB)
        h.aws.meter(job, [2.0e19, METERED])
    h.send(state_change("job-clean"))
    h.drain()
    (clean,) = h.records().values()
    assert clean.flops.method == "metered" and clean.outcome == "approaching"
    h.aws.messages(h.aws.recorded_queue)  # empty the inboxes: only the faulted job's announcements count below
    h.aws.messages(h.aws.alerts_queue)
    key = next(iter(h.records())).replace("job-clean", name)
    return clean, key


def assert_recorded_like_clean(
    h: Harness, clean: Any, key: str, name: str = "job-faulted", *, at_least_once: bool = False
) -> None:
    faulted = h.aws.store.get_record(key)
    assert conservative_view(faulted) == conservative_view(clean)
    assert h.aws.store.exists(notification_key(key))  # announced, and marked as such
    recorded = [m["detail"]["job_name"] for m in h.aws.messages(h.aws.recorded_queue)]
    alerts = [json.loads(m["Message"].split("\n\n", 1)[1])["job_name"] for m in h.aws.messages(h.aws.alerts_queue)]
    assert len(list(h.aws.store.list_versions(key))) == 1  # one version: written once, never replaced
    if at_least_once:
        assert set(recorded) == set(alerts) == {name}
    else:
        assert recorded == [name] and alerts == [name]  # exactly once each, whatever was retried
    assert h.dead_letters() == []


def fail_before_send(client: Any, operation: str, fault: str, times: int) -> dict[str, int]:
    """The next ``times`` HTTP sends of ``operation`` fail with ``fault``; botocore's retry loop sees each one.

    ``connect_timeout`` / ``connection_refused`` / ``read_timeout``: the request never reaches the emulator.
    ``response_lost``: the emulator handles the request, then the response times out (the ambiguous case).
    """
    left = {"remaining": times, "injected": 0}
    url = f"https://{client.meta.service_model.endpoint_prefix}.{REGION}.amazonaws.com/"

    def fail(request: Any, event_name: str, **_: Any) -> None:
        if left["remaining"] <= 0:
            return
        left["remaining"] -= 1
        left["injected"] += 1
        if fault == "connect_timeout":
            raise ConnectTimeoutError(endpoint_url=url)
        if fault == "connection_refused":
            raise EndpointConnectionError(endpoint_url=url)
        if fault == "response_lost":
            botocore_stubber(event_name=event_name, request=request)  # moto does the work ...
        raise ReadTimeoutError(endpoint_url=url)  # ... and the answer never arrives

    register_hook(client, f"before-send.{client.meta.service_model.service_id.hyphenize()}.{operation}", fail)
    return left


FAULTS = ["read_timeout", "connect_timeout", "connection_refused", "response_lost"]
# Each operation meets one network fault, each fault two operations; PutObject (with ListTags) meets the ambiguous
# one: a write whose answer is lost must turn into neither a lost nor a second record.
NETWORK_CASES = [(svc, op, FAULTS[(i + 2) % 4]) for i, (svc, op) in enumerate(OPERATIONS)]


@pytest.mark.parametrize(("service", "operation", "fault"), NETWORK_CASES)
def test_transient_network_fault_is_retried_by_botocore(harness, service, operation, fault):
    """Fewer faults than botocore's attempts: the first delivery succeeds, after back-off."""
    clean, key = clean_and_faulted(harness)
    injected = fail_before_send(harness[service], operation, fault, times=MAX_ATTEMPTS - 1)
    harness.send(state_change("job-faulted"))
    (first,) = harness.drain(rounds=1)
    assert injected["injected"] == MAX_ATTEMPTS - 1 and len(harness.slept) >= MAX_ATTEMPTS - 1
    assert first == {"batchItemFailures": []}
    # A lost answer to PutEvents/Publish means the emulator did send it: announcements are at-least-once.
    assert_recorded_like_clean(harness, clean, key, at_least_once=fault == "response_lost")


@pytest.mark.parametrize(("service", "operation"), OPERATIONS)
def test_fault_outlasting_botocore_retries_is_retried_through_the_queue(harness, service, operation):
    """Every attempt of one delivery times out: a batch-item failure, a logged reason, and success on redelivery."""
    clean, key = clean_and_faulted(harness)
    injected = fail_before_send(harness[service], operation, "read_timeout", times=MAX_ATTEMPTS)
    harness.send(state_change("job-faulted"))
    (first,) = harness.drain(rounds=1)
    assert injected["injected"] == MAX_ATTEMPTS and len(first["batchItemFailures"]) == 1
    (retry,) = harness.logged("transient failure; the message will be retried")
    assert "Read timeout" in retry["reason"] and retry["job"] == "job-faulted"
    if operation not in ("PutEvents", "Publish"):
        assert not harness.aws.store.exists(key)  # nothing half-done was written
    harness.drain()
    assert_recorded_like_clean(harness, clean, key)


ERROR_CODES = [("ThrottlingException", 400), ("InternalError", 500), ("ServiceUnavailable", 503), ("SlowDown", 503)]
ERROR_CASES = [(svc, op, *ERROR_CODES[i % len(ERROR_CODES)]) for i, (svc, op) in enumerate(OPERATIONS)]


@pytest.mark.parametrize(("service", "operation", "code", "status"), ERROR_CASES)
def test_throttling_and_5xx_errors_are_retried_through_the_queue(harness, service, operation, code, status):
    clean, key = clean_and_faulted(harness)
    inject_faults(harness[service], operation, times=2, code=code, status=status)
    harness.send(state_change("job-faulted"))
    harness.drain()
    assert len(harness.logged("transient failure; the message will be retried")) == 2
    assert_recorded_like_clean(harness, clean, key)


@pytest.mark.parametrize(
    ("service", "operation"), [("sagemaker", "DescribeTrainingJob"), ("s3", "HeadObject"), ("sns", "Publish")]
)
def test_a_fault_that_never_ends_lands_in_the_dlq_with_its_reason(harness, service, operation):
    clean, key = clean_and_faulted(harness)
    fault = inject_faults(harness[service], operation, times=10**6, code="ServiceUnavailable", status=503)
    harness.send(state_change("job-faulted"))
    harness.drain(rounds=MAX_RECEIVE_COUNT + 2)
    fault["remaining"] = 0
    assert harness.dead_letters() == [state_change_body(harness, "job-faulted")]
    reasons = harness.logged("transient failure; the message will be retried")
    assert len(reasons) == MAX_RECEIVE_COUNT and all("ServiceUnavailable" in r["reason"] for r in reasons)
    if operation in ("PutEvents", "Publish"):  # the record was written before the announcement failed: kept, intact
        assert conservative_view(harness.aws.store.get_record(key)) == conservative_view(clean)
        assert not harness.aws.store.exists(notification_key(key))
    else:
        assert not harness.aws.store.exists(key)


def state_change_body(h: Harness, name: str) -> str:
    """The body the test sent for ``name`` (state_change() makes a fresh event id each call)."""
    return next(body for body in h.sent if json.loads(body)["detail"]["TrainingJobName"] == name)


# AccessDenied (permanent): where each ends. CloudTrail is the one dependency the record can do without: the record
# says "not_found" with the reason (documented in docs/service.md); every other refusal dead-letters the message.
PERMANENT_OUTCOMES = {
    "DescribeTrainingJob": "dlq",
    "ListTags": "dlq",
    "GetMetricData": "dlq",
    "LookupEvents": "recorded_without_cloudtrail",
    "HeadObject": "dlq",
    "PutObject": "dlq",
    "PutEvents": "dlq_after_write",
    "Publish": "dlq_after_write",
}


@pytest.mark.parametrize(("service", "operation"), OPERATIONS)
def test_access_denied_is_a_permanent_failure_with_a_reason(harness, service, operation):
    clean, key = clean_and_faulted(harness)
    fault = inject_faults(harness[service], operation, times=10**6, code="AccessDeniedException", status=403)
    harness.send(state_change("job-faulted"))
    harness.drain(rounds=MAX_RECEIVE_COUNT + 2)
    fault["remaining"] = 0
    expected = PERMANENT_OUTCOMES[operation]
    if expected == "recorded_without_cloudtrail":
        record = harness.aws.store.get_record(key)
        assert record.cloudtrail.status == "not_found" and "AccessDenied" in record.cloudtrail.reason
        assert conservative_view(record) == conservative_view(clean)
        assert harness.dead_letters() == []
        return
    (dead,) = harness.dead_letter_messages()
    assert dead["Body"] == state_change_body(harness, "job-faulted")
    (failure,) = harness.logged("permanent failure; will end in the dead-letter queue")  # one delivery, no retries
    assert "AccessDenied" in failure["reason"] and operation in failure["reason"]
    why = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert why[contract.DLQ_ATTR_REASON] == failure["reason"] and why[contract.DLQ_ATTR_JOB] == "job-faulted"
    if expected == "dlq_after_write":
        assert conservative_view(harness.aws.store.get_record(key)) == conservative_view(clean)
    else:
        assert not harness.aws.store.exists(key)


@pytest.mark.parametrize(("code", "status"), [("AccessDenied", 403), ("ServiceUnavailable", 503)])
def test_a_failed_dead_letter_send_leaves_the_message_to_the_redrive_policy(harness, code, status):
    """The handler's own DLQ send refused or failing: the permanent failure is reported as a batch-item failure
    instead, redelivered, and moved to the DLQ by the redrive policy (bare, no attributes). Never lost."""
    harness.aws.job("job-faulted")
    fault = inject_faults(harness.dlq_client, "SendMessage", times=10**6, code=code, status=status)
    harness.send(state_change("job-faulted"), "{not json")  # the job exists: only the malformed body fails
    harness.drain(rounds=MAX_RECEIVE_COUNT + 2)
    fault["remaining"] = 0
    (dead,) = harness.dead_letter_messages()
    assert dead["Body"] == "{not json" and "MessageAttributes" not in dead
    assert len(harness.logged("dead-letter send failed; the message is left to the queue's redrive policy")) == (
        MAX_RECEIVE_COUNT
    )
    assert len(harness.records()) == 1


def test_partial_batch_failure_retries_only_the_failed_record(harness):
    """Five jobs in one batch, one of them throttled on DescribeTrainingJob: only that one is reported and retried."""
    names = [f"job-batch-{i}" for i in range(5)]
    for name in names:
        harness.aws.job(name)
    throttled = {"count": 0}

    def mark(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["flopsmeter_test_job"] = params.get("TrainingJobName")

    def throttle_job_3(context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if context.get("flopsmeter_test_job") != "job-batch-3" or throttled["count"] >= 1:
            return None
        throttled["count"] += 1
        body = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
        body["ResponseMetadata"] = {"HTTPStatusCode": 400}
        return AWSResponse("https://injected.invalid", 400, {}, None), body

    register_hook(harness["sagemaker"], "before-parameter-build.sagemaker.DescribeTrainingJob", mark)
    register_hook(harness["sagemaker"], "before-call.sagemaker.DescribeTrainingJob", throttle_job_3)
    harness.send(*(state_change(n) for n in names))
    (first,) = harness.drain(rounds=1)
    failed_bodies = [r for r in harness.sent if json.loads(r)["detail"]["TrainingJobName"] == "job-batch-3"]
    assert len(first["batchItemFailures"]) == 1 and len(failed_bodies) == 1
    assert sorted(k.rsplit("/", 1)[1] for k in harness.records()) == [f"{n}.json" for n in names if n != "job-batch-3"]
    harness.drain()
    assert sorted(k.rsplit("/", 1)[1] for k in harness.records()) == [f"{n}.json" for n in names]
    assert harness.aws.metrics.counts["JobsClassified"] == 5 and harness.dead_letters() == []


def test_putevents_partial_failure_is_retried_and_announced_once(harness):
    """PutEvents answers 200 with FailedEntryCount=1: not a success; retried until the event really goes out."""
    clean, key = clean_and_faulted(harness)
    calls = {"n": 0}

    def partial(**_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        calls["n"] += 1
        if calls["n"] > 1:
            return None
        body = {
            "FailedEntryCount": 1,
            "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "injected partial failure"}],
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }
        return AWSResponse("https://injected.invalid", 200, {}, None), body

    register_hook(harness["events"], "before-call.events.PutEvents", partial)
    harness.send(state_change("job-faulted"))
    harness.drain()
    (retry,) = harness.logged("transient failure; the message will be retried")
    assert "InternalFailure" in retry["reason"]
    assert_recorded_like_clean(harness, clean, key)


def test_a_crash_after_the_write_is_finished_by_the_redelivery(harness):
    """An unexpected exception (a bug, or Lambda's timeout) right after the record is written: the message comes
    back, the duplicate path sees the record and announces it; the record is never rewritten."""
    clean, key = clean_and_faulted(harness)
    crashed = {"n": 0}

    def crash(**_: Any) -> None:
        if crashed["n"] == 0:
            crashed["n"] += 1
            raise RuntimeError("injected crash after the audit write")

    register_hook(harness["events"], "before-call.events.PutEvents", crash)
    harness.send(state_change("job-faulted"))
    harness.drain()
    (unexpected,) = harness.logged("unexpected error; the message will be retried")
    assert "RuntimeError: injected crash" in unexpected["exception"]
    assert harness.aws.metrics.counts["DuplicateDelivery"] == 1  # the redelivery found the record and announced it
    assert_recorded_like_clean(harness, clean, key)


def test_cloudwatch_answering_garbage_values_never_lowers_the_figure(harness):
    """GetMetricData returning NaN/inf/negative maxima: ignored, the job is classified on its hardware ceiling."""
    for name in ("job-nan", "job-inf", "job-negative"):
        harness.aws.job(name, **JOB)
        harness.aws.meter(name, [METERED])
    garbage = {"job-nan": float("nan"), "job-inf": float("inf"), "job-negative": -1.0e22}

    current: dict[str, str] = {}

    def remember(params: dict[str, Any], **_: Any) -> None:  # the API parameters, before serialization
        current["job"] = params["MetricDataQueries"][0]["MetricStat"]["Metric"]["Dimensions"][0]["Value"]

    def rewrite(parsed: dict[str, Any], **_: Any) -> None:
        for result in parsed.get("MetricDataResults", []):
            if result["Id"] == "flops" and result.get("Values"):
                result["Values"] = [garbage[current["job"]]]

    register_hook(harness["cloudwatch"], "before-parameter-build.cloudwatch.GetMetricData", remember)
    register_hook(harness["cloudwatch"], "after-call.cloudwatch.GetMetricData", rewrite)
    harness.send(*(state_change(n) for n in garbage))
    harness.drain()
    records = {r.job.name: r for r in harness.records().values()}
    assert sorted(records) == sorted(garbage)
    for record in records.values():
        assert record.flops.method == "hardware_ceiling" and record.flops.metered is None
        assert record.flops.classified_flops == record.flops.hardware_ceiling.flops > METERED
        assert any("metered CumulativeFlops" in w and "ignored" in w for w in record.warnings)
        assert record.outcome == "exceeds"  # the ceiling (1.8e24) is far above 6e22: more conservative, not less
