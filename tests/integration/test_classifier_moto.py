"""The classifier handler end to end on moto: SQS message -> handler -> adapters -> locked S3 record -> events.

Emulated (see conftest): Object Lock and If-None-Match (moto), SageMaker job lifecycle/Environment and CloudTrail
LookupEvents (flopsmeter.local.moto_ext), SQS redrive to the DLQ and message attributes (moto). Lambda's SQS event
source mapping is emulated by ``drain`` (receive, invoke, delete what did not fail).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest
from botocore.exceptions import ClientError

from flopsmeter import contract
from flopsmeter.audit.keys import addenda_prefix, notification_key, record_key
from flopsmeter.aws.dead_letters import DeadLetterQueue
from flopsmeter.functions import classifier
from flopsmeter.functions.container import ClassifierContainer
from flopsmeter.local import moto_ext
from flopsmeter.local.runner import lambda_sqs_event
from tests.support.lambda_context import lambda_context
from tests.support.moto_world import ACCOUNT, BUCKET, REGION, inject_faults, state_change

G5_PEAK = 125e12  # ml.g5.xlarge: one A10G, bounded by the A10's dense BF16 peak


@pytest.fixture
def wired(aws):
    """The classifier over moto: the service's adapters, and DEAD_LETTER_QUEUE_URL as the stack sets it."""
    aws.handler = classifier.handler_for(
        lambda: ClassifierContainer(aws.deps(), aws.config, DeadLetterQueue(aws["sqs"], aws.dlq))
    )
    return aws


def drain(aws, *, rounds: int = 10) -> list[dict]:
    """Lambda's SQS event source mapping, emulated: receive, invoke, delete the records that did not fail."""
    responses = []
    for _ in range(rounds):
        messages = (
            aws["sqs"]
            .receive_message(QueueUrl=aws.classifier_queue, MaxNumberOfMessages=10, AttributeNames=["All"])
            .get("Messages", [])
        )
        if not messages:
            break
        event = lambda_sqs_event(messages, queue_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:classifier", region=REGION)
        response = aws.handler(event, lambda_context())
        responses.append(response)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for m in messages:
            if m["MessageId"] not in failed:
                aws["sqs"].delete_message(QueueUrl=aws.classifier_queue, ReceiptHandle=m["ReceiptHandle"])
    return responses


def send(aws, *bodies: str) -> None:
    for body in bodies:
        aws["sqs"].send_message(QueueUrl=aws.classifier_queue, MessageBody=body)


def key(name, end):
    return record_key(ACCOUNT, REGION, end, name)


@pytest.mark.parametrize("status", ["Completed", "Failed", "Stopped"])
def test_each_terminal_status_is_recorded_locked_and_announced(wired, status):
    end = wired.job(
        f"job-{status.lower()}",
        status=status,
        hours=2,
        failure_reason="AlgorithmError: OOM" if status == "Failed" else None,
    )
    send(wired, state_change(f"job-{status.lower()}", status))
    drain(wired)
    stored = wired.store.get_record(key(f"job-{status.lower()}", end))
    assert stored.job.status == status and stored.flops.method == "hardware_ceiling"
    assert stored.flops.classified_flops == pytest.approx(G5_PEAK * 7200)
    assert stored.cloudtrail.status == "found" and stored.cloudtrail.principal_arn.startswith("arn:aws:")
    head = wired["s3"].head_object(Bucket=BUCKET, Key=key(f"job-{status.lower()}", end))
    assert head["ObjectLockMode"] == "COMPLIANCE"
    (announced,) = wired.messages(wired.recorded_queue)
    assert announced["detail"]["record_id"] == stored.record_id and announced["source"] == "flopsmeter"
    with pytest.raises(ClientError):  # a record cannot be deleted (locked version)
        wired["s3"].delete_object(Bucket=BUCKET, Key=key(f"job-{status.lower()}", end), VersionId=head["VersionId"])


def test_metered_job_uses_the_maximum_of_its_cumulative_metric(wired):
    end = wired.job("job-metered", environment={"PRETRAIN_FLOPS": "1.5e24", "FLOPSMETER_BASE_MODEL": "llama-3-70b"})
    # sent out of order (a retried emission arrives late, keeping its measurement time): the series by time is
    # 1e17, 2.5e17, 4e17, so the job's figure is 4e17, not the last value received
    wired.meter("job-metered", [1.0e17, 4.0e17, 2.5e17], minutes=[0, 2, 1])
    wired.meter("job-metered", [5e5], metric="CumulativeTokens")
    send(wired, state_change("job-metered"))
    drain(wired)
    record = wired.store.get_record(key("job-metered", end))
    assert record.flops.method == "metered" and record.flops.classified_flops == 4.0e17
    assert record.flops.tokens == 500_000
    assert record.base_model.source == "environment" and record.classifications[0].threshold == pytest.approx(4.5e23)


@pytest.mark.parametrize(
    ("environment", "tags", "threshold"),
    [
        ({}, {}, 3.3e22),
        ({"PRETRAIN_FLOPS": "1e24 OR 1=1"}, {"flopsmeter:pretrain-flops": "1e26"}, 3.3e22),
        ({"PRETRAIN_FLOPS": "-1"}, {}, 3.3e22),
        ({}, {"flopsmeter:pretrain-flops": "1e24"}, 3.0e23),
    ],
)
def test_missing_or_bad_pretrain_flops(wired, environment, tags, threshold):
    end = wired.job("job-pretrain", environment=environment, tags=tags)
    send(wired, state_change("job-pretrain"))
    drain(wired)
    record = wired.store.get_record(key("job-pretrain", end))
    primary = next(c for c in record.classifications if c.policy == "aws-30pct-2026")
    assert primary.threshold == pytest.approx(threshold)


def test_duplicate_and_out_of_order_events_leave_one_record(wired):
    end = wired.job("job-dup")
    send(wired, state_change("job-dup", event_id="first"), state_change("job-dup", event_id="second"))
    drain(wired)
    send(wired, state_change("job-dup", "InProgress", event_id="late-in-progress"))
    drain(wired)
    versions = list(wired.store.list_versions(key("job-dup", end)))
    assert len(versions) == 1
    assert wired.store.get_record(key("job-dup", end)).eventbridge_event_id == "first"
    assert wired.metrics.counts["DuplicateDelivery"] == 1 and wired.metrics.counts["JobsClassified"] == 1
    assert len(wired.messages(wired.recorded_queue)) == 1


def test_malformed_and_vanished_job_events_are_in_the_dlq_after_one_delivery_with_their_reason(wired):
    end = wired.job("job-good")
    vanished = state_change("job-never-created")
    sent_ids = {
        body: wired["sqs"].send_message(QueueUrl=wired.classifier_queue, MessageBody=body)["MessageId"]
        for body in ("{truncated", vanished, state_change("job-good"))
    }
    responses = drain(wired, rounds=1)  # ONE delivery: the queue's maxReceiveCount (3) is never reached

    assert responses == [{"batchItemFailures": []}]
    attrs = wired["sqs"].get_queue_attributes(QueueUrl=wired.classifier_queue, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
    dead = wired["sqs"].receive_message(
        QueueUrl=wired.dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
    )["Messages"]
    by_body = {m["Body"]: {k: v["StringValue"] for k, v in m["MessageAttributes"].items()} for m in dead}
    assert set(by_body) == {"{truncated", vanished}  # the original bodies, unchanged
    malformed, unknown = by_body["{truncated"], by_body[vanished]
    assert malformed[contract.DLQ_ATTR_ERROR] == "MalformedEvent" and "JSON" in malformed[contract.DLQ_ATTR_REASON]
    assert unknown[contract.DLQ_ATTR_ERROR] == "JobNotFound" and unknown[contract.DLQ_ATTR_JOB] == "job-never-created"
    assert "job-never-created" in unknown[contract.DLQ_ATTR_REASON]
    for body, attributes in by_body.items():
        assert attributes[contract.DLQ_ATTR_SOURCE_MESSAGE_ID] == sent_ids[body]
        assert attributes[contract.DLQ_ATTR_RECEIVE_COUNT] == "1" and attributes[contract.DLQ_ATTR_FAILED_AT]
        assert len(attributes[contract.DLQ_ATTR_REASON]) <= classifier.MAX_REASON
    assert wired.store.exists(key("job-good", end))


def test_a_refused_dead_letter_send_falls_back_to_the_redrive_policy(wired):
    """SendMessage to the DLQ refused (AccessDenied): the message fails, is redelivered, and moto's redrive moves the
    bare body after maxReceiveCount (3) receives. Nothing is lost."""
    send(wired, "{truncated")
    fault = inject_faults(wired["sqs"], "SendMessage", times=10**6, code="AccessDenied", status=403)  # from here on
    responses = drain(wired)
    fault["remaining"] = 0  # disarmed: the client is shared with the other tests
    assert [len(r["batchItemFailures"]) for r in responses] == [1, 1, 1]
    (dead,) = wired["sqs"].receive_message(QueueUrl=wired.dlq, MessageAttributeNames=["All"])["Messages"]
    assert dead["Body"] == "{truncated" and "MessageAttributes" not in dead


def test_cloudtrail_late_then_found(wired):
    moto_ext.set_cloudtrail_lag(10**6, account_id=ACCOUNT, region=REGION)  # nothing delivered yet
    end = wired.job("job-late")
    wired.now = end + timedelta(minutes=5)
    send(wired, state_change("job-late"))
    responses = drain(wired, rounds=1)
    assert len(responses[0]["batchItemFailures"]) == 1 and not wired.store.exists(key("job-late", end))
    moto_ext.set_cloudtrail_lag(0, account_id=ACCOUNT, region=REGION)
    drain(wired)
    assert wired.store.get_record(key("job-late", end)).cloudtrail.status == "found"


def test_cloudtrail_absent_after_the_wait_is_recorded_as_not_found(wired):
    end = wired.job("job-untrailed")
    moto_ext.clear_cloudtrail_events("job-untrailed", account_id=ACCOUNT, region=REGION)
    wired.now = end + timedelta(hours=2)
    send(wired, state_change("job-untrailed"))
    drain(wired)
    record = wired.store.get_record(key("job-untrailed", end))
    assert record.cloudtrail.status == "not_found" and "waited up to 3600s" in record.cloudtrail.reason
    assert wired.metrics.counts["CloudTrailNotFound"] == 1


THROTTLED = [
    ("sagemaker", "DescribeTrainingJob"),
    ("sagemaker", "ListTags"),
    ("cloudwatch", "GetMetricData"),
    ("cloudtrail", "LookupEvents"),
    ("s3", "HeadObject"),
    ("s3", "PutObject"),
    ("events", "PutEvents"),
    ("sns", "Publish"),
]


@pytest.mark.parametrize(("service", "operation"), THROTTLED)
def test_throttling_on_any_call_is_retried_and_never_less_conservative(wired, service, operation):
    """A throttle fails the message (retried by SQS); the record that ends up written equals a clean run's."""
    big = {"instance_type": "ml.p5.48xlarge", "count": 16, "hours": 500, "environment": {"PRETRAIN_FLOPS": "2e23"}}
    end = wired.job("job-throttle", **big)
    wired.job("job-clean", **big)
    for name in ("job-throttle", "job-clean"):
        wired.meter(name, [2.0e19, 5.0e22])  # 5e22 of a 6e22 threshold: approaching, so SNS is exercised too
    send(wired, state_change("job-clean"))
    drain(wired)
    injected = inject_faults(wired[service], operation, times=1)
    send(wired, state_change("job-throttle"))
    first = drain(wired, rounds=1)
    # LookupEvents throttling is backed off inside the lookup (flopsmeter.aws.lookup_budget): the message succeeds
    absorbed = (service, operation) == ("cloudtrail", "LookupEvents")
    assert injected["injected"] == 1 and len(first[0]["batchItemFailures"]) == (0 if absorbed else 1)
    drain(wired)
    throttled = wired.store.get_record(key("job-throttle", end))
    clean = wired.store.get_record(key("job-clean", end))
    assert (
        (throttled.flops.method, throttled.flops.classified_flops, throttled.outcome)
        == (clean.flops.method, clean.flops.classified_flops, clean.outcome)
        == ("metered", 5.0e22, "approaching")
    )
    assert [c.threshold for c in throttled.classifications] == [c.threshold for c in clean.classifications]
    assert wired.store.exists(notification_key(key("job-throttle", end)))
    recorded = [m["detail"]["job_name"] for m in wired.messages(wired.recorded_queue)]
    assert recorded.count("job-throttle") == 1
    alerts = [json.loads(m["Message"].split("\n\n", 1)[1])["job_name"] for m in wired.messages(wired.alerts_queue)]
    assert alerts.count("job-throttle") == 1


def test_lineage_accumulates_across_jobs(wired):
    parent_end = wired.job("job-sft", hours=1)
    wired.meter("job-sft", [2.0e22])
    send(wired, state_change("job-sft"))
    drain(wired)
    end = wired.job("job-dpo", hours=1, tags={"flopsmeter:parent-job": "job-sft"})
    wired.meter("job-dpo", [1.5e22])
    send(wired, state_change("job-dpo"))
    drain(wired)
    child = wired.store.get_record(key("job-dpo", end))
    assert child.lineage.parent_record_key == key("job-sft", parent_end)
    assert child.lineage.cumulative_flops == pytest.approx(3.5e22) and child.outcome == "exceeds"
    (alert,) = wired.messages(wired.alerts_queue)
    assert "job-dpo" in alert["Subject"] and alert["MessageAttributes"]["outcome"]["Value"] == "exceeds"


def test_lineage_inferred_from_an_input_channel_and_a_model_package_without_tags(wired):
    group = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/support-bot"
    parent_end = wired.job("job-sft", hours=1, extra={"ModelPackageConfig": {"ModelPackageGroupArn": group}})
    wired.meter("job-sft", [2.0e22])
    send(wired, state_change("job-sft"))
    drain(wired)
    parent = wired.store.get_record(key("job-sft", parent_end))
    assert parent.lineage.output_model_package_arn == f"{group.replace('-group', '')}/1"
    index = [o["Key"] for o in wired.store.list_keys("index/v1/")]
    entries = [k for k in index if not k.startswith(("index/v1/contains/", "index/v1/reads"))]
    assert len(entries) == 4  # the job, its model artifact, its output prefix, its model package
    assert any(k.startswith("index/v1/contains/") for k in index)  # issue 23: what an input prefix may contain
    head = wired["s3"].head_object(Bucket=BUCKET, Key=index[0])
    assert head["ObjectLockMode"] == "COMPLIANCE"  # immutable, like the records
    source = {"S3DataType": "S3Prefix", "S3Uri": "s3://models/out/job-sft/output/model.tar.gz"}
    reads = {
        "job-dpo": {"InputDataConfig": [{"ChannelName": "model", "DataSource": {"S3DataSource": source}}]},
        "job-cont": {
            "ModelPackageConfig": {
                "ModelPackageGroupArn": group,
                "SourceModelPackageArn": parent.lineage.output_model_package_arn,
            }
        },
    }
    for name, extra in reads.items():
        end = wired.job(name, hours=1, started_after_hours=1.5, extra=extra)  # unmetered: its ceiling counts
        send(wired, state_change(name))
        drain(wired)
        child = wired.store.get_record(key(name, end))
        assert child.lineage.parent_record_key == key("job-sft", parent_end)
        assert child.lineage.parents[0].source == ("input_channel" if name == "job-dpo" else "model_package")
        assert child.lineage.status == "complete" and child.lineage.parent_cumulative_flops == 2.0e22
        assert child.lineage.cumulative_flops == pytest.approx(2.0e22 + child.lineage.own_flops)


def test_a_parent_whose_event_arrives_after_its_child_s_re_assesses_the_child_by_an_addendum(wired):
    """Issue 23: order of arrival never lowers a figure. The child is recorded first (its parent unknown: below);
    the parent's late event re-assesses it: a locked addendum beside the untouched original, and an alert."""
    wired.job("job-sft", hours=1)
    wired.meter("job-sft", [3.4e22])
    source = {"S3DataType": "S3Prefix", "S3Uri": "s3://models/out/job-sft/output/model.tar.gz"}
    channel = [{"ChannelName": "model", "DataSource": {"S3DataSource": source}}]
    end = wired.job("job-dpo", hours=1, started_after_hours=1.5, extra={"InputDataConfig": channel})  # its ceiling
    send(wired, state_change("job-dpo"))
    drain(wired)
    original = wired.store.get_record(key("job-dpo", end))
    assert original.outcome == "below" and original.lineage.status == "none"
    assert wired.messages(wired.alerts_queue) == []
    send(wired, state_change("job-sft"))  # the parent's event, late (retried, or redriven from the DLQ)
    drain(wired)
    (addendum_key,) = [o["Key"] for o in wired.store.list_keys(addenda_prefix(key("job-dpo", end)))]
    addendum = wired.store.get_record(addendum_key)
    assert addendum.addendum.of_record_key == key("job-dpo", end) and addendum.addendum.late_parents == ["job-sft"]
    assert addendum.lineage.cumulative_flops == pytest.approx(3.4e22 + G5_PEAK * 3600)
    assert addendum.outcome == "exceeds" and addendum.lineage.parents[0].job == "job-sft"
    assert wired.store.get_record(key("job-dpo", end)).sha256 == original.sha256  # the original, as written
    head = wired["s3"].head_object(Bucket=BUCKET, Key=addendum_key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    (alert,) = [a for a in wired.messages(wired.alerts_queue) if "job-dpo" in a["Subject"]]
    assert alert["MessageAttributes"]["outcome"]["Value"] == "exceeds" and "RE-ASSESSED" in alert["Message"]
    events = [e for e in wired.messages(wired.recorded_queue) if e["detail"]["record_key"] == addendum_key]
    assert len(events) == 1


def test_meter_incomplete_job_is_classified_on_its_ceiling(wired):
    end = wired.job("job-resumed", hours=1)
    wired.meter("job-resumed", [3.0e15, 4.0e15])
    wired.meter("job-resumed", [0.0, 1.0], metric=contract.METRIC_METER_INCOMPLETE)  # Maximum over the window: 1
    send(wired, state_change("job-resumed"))
    drain(wired)
    record = wired.store.get_record(key("job-resumed", end))
    assert record.flops.method == "hardware_ceiling" and record.flops.metered == 4.0e15
    assert record.flops.classified_flops == pytest.approx(G5_PEAK * 3600)
    assert any("MeterIncomplete" in w and "not trusted" in w for w in record.warnings)


@pytest.mark.torch
def test_real_meter_resumed_without_totals_reaches_the_classifier_as_incomplete(wired, tmp_path):
    """The training meter (resumed at step 5 with no saved totals) sends to moto's CloudWatch; the handler then
    classifies the job on its ceiling and keeps the meter's figure (3 counted steps + 5 estimated)."""
    torch = pytest.importorskip("torch")
    from flopsmeter.domain.flops import flops_per_token
    from flopsmeter.domain.shape import ModelShape
    from flopsmeter.training.emitters import CloudWatchEmitter
    from flopsmeter.training.environment import read_job_environment
    from flopsmeter.training.meter import FlopsMeter

    end = wired.job("job-real-resume", hours=1)
    shape = ModelShape(hidden_size=64, num_layers=2, num_attention_heads=4, num_key_value_heads=4, head_dim=16,
                       intermediate_size=128, vocab_size=256)  # fmt: skip
    env = read_job_environment({}, output_dir=tmp_path, resource_config_path=str(tmp_path / "none.json"))
    emitter = CloudWatchEmitter("job-real-resume", backoff_s=0.0, client_factory=lambda r, e: wired["cloudwatch"])
    meter = FlopsMeter(shape=shape, environment=env, emit_every_s=0, stdout=False, handle_signals=False,
                       cloudwatch_emitter=emitter)  # fmt: skip
    meter.resume_at(5)
    meter.start()
    for _ in range(3):
        meter.step({"input_ids": torch.zeros(4, 32, dtype=torch.long)})
    meter.close()
    per_step = flops_per_token(shape, 32).total * 4 * 32
    assert emitter.sent == 4 and emitter.failures == 0
    send(wired, state_change("job-real-resume"))
    drain(wired)
    record = wired.store.get_record(key("job-real-resume", end))
    assert record.flops.method == "hardware_ceiling"
    assert record.flops.classified_flops == pytest.approx(G5_PEAK * 3600)
    assert record.flops.metered == pytest.approx(8 * per_step, rel=1e-9)
    assert any("MeterIncomplete" in w for w in record.warnings)


def test_a_restart_from_zero_adds_the_runs_instead_of_keeping_the_largest(wired):
    """The meter's series falls when the training process starts again without its saved totals."""
    end = wired.job("job-restarted")
    wired.meter("job-restarted", [1.0e17, 4.0e17, 0.5e17, 2.5e17])
    send(wired, state_change("job-restarted"))
    drain(wired)
    record = wired.store.get_record(key("job-restarted", end))
    assert record.flops.method == "metered" and record.flops.classified_flops == pytest.approx(6.5e17)
    assert any("fell 1 time(s)" in w for w in record.warnings)


# --- a role without s3:ListBucket on the key: a missing object reads as 403, not 404 (issue 12, item 2) -----------


@pytest.mark.parametrize("list_denied", [False, True])
def test_without_list_bucket_records_are_written_once_and_nothing_is_dead_lettered(aws, list_denied):
    """HEAD of a missing record/marker answers 403: the classifier, reconciler and digest writer go on and rely on
    If-None-Match (412 = already recorded). A HEAD of an object that exists still succeeds, so a duplicate finds the
    record's announcement marker and is not announced again, with or without listing."""
    from flopsmeter.aws.store import AuditStore
    from flopsmeter.service.reconcile import reconcile
    from tests.support.moto_world import WithoutListBucket

    s3 = WithoutListBucket(aws["s3"], list_denied=list_denied)
    aws.handler = classifier.handler_for(
        lambda: ClassifierContainer(
            dataclasses.replace(aws.deps(), store=AuditStore(s3, BUCKET)),
            aws.config,
            DeadLetterQueue(aws["sqs"], aws.dlq),
        )
    )
    end = aws.job("job-no-list")
    send(aws, state_change("job-no-list", event_id="first"))
    drain(aws)
    send(aws, state_change("job-no-list", event_id="second"))
    drain(aws)
    assert len(list(aws.store.list_versions(key("job-no-list", end)))) == 1
    assert aws.store.get_record(key("job-no-list", end)).eventbridge_event_id == "first"
    assert aws["sqs"].receive_message(QueueUrl=aws.dlq).get("Messages") is None  # nothing dead-lettered
    assert len(aws.messages(aws.recorded_queue)) == 1
    report = reconcile(dataclasses.replace(aws.deps(), store=AuditStore(s3, BUCKET)), aws.config, lookback_hours=48)
    assert not report.failed and not report.recorded
    assert len(list(aws.store.list_versions(key("job-no-list", end)))) == 1


def test_a_job_whose_meter_could_not_reach_cloudwatch_is_metered_from_final_metric_data(wired):
    """Second channel (issue 11, item 8), through DescribeTrainingJob on the emulator: no CloudWatch series, but
    SageMaker kept the meter's stdout metrics (MetricDefinitions) in FinalMetricDataList."""
    end = wired.job("job-stdout-only")
    moto_ext.set_training_job_state(
        "job-stdout-only",
        moto_ext.JobState(
            final_metrics={contract.STDOUT_METRIC_CUMULATIVE_FLOPS: 7.5e17, contract.STDOUT_METRIC_TOKENS: 123456}
        ),
        account_id=ACCOUNT,
        region=REGION,
    )
    send(wired, state_change("job-stdout-only"))
    drain(wired)
    record = wired.store.get_record(key("job-stdout-only", end))
    assert record.flops.method == "metered" and record.flops.classified_flops == 7.5e17
    assert record.flops.metered_channel == "final_metric_data" and record.flops.tokens == 123456
