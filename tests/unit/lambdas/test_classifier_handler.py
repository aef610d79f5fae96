"""The classifier Lambda handler: parsing, partial batch failures, non-terminal statuses, the bad-input corpus,
permanent failures sent to the dead-letter queue with their reason (on a fake SQS client)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from flopsmeter import contract
from flopsmeter.aws.dead_letters import DeadLetter, message_attributes
from flopsmeter.errors import JobNotFound, MalformedEvent, PermanentStoreError
from flopsmeter.functions import classifier
from flopsmeter.functions.settings import SettingsError
from tests.support.fakes import DLQ_URL, END, FakeMetrics
from tests.support.lambda_context import EVENTS, event_json, event_text, sqs_event

MANIFEST = json.loads((EVENTS / "bad" / "MANIFEST.json").read_text())["cases"]


def failed_ids(response: dict) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def test_aws_docs_example_event_parses_unchanged():
    event = classifier.parse_event(event_text("sagemaker_training_job_state_change_aws_docs.json"))
    assert event.id == "844e2571-85d4-695f-b930-0153b71dcb42"
    assert event.job_name == "89c96cc8-dded-4739-afcc-6f1dc936701d" and event.is_terminal
    assert event.detail.TrainingEndTime.year == 2020  # "1583831889050": epoch milliseconds as a string
    assert event.detail.ResourceConfig["InstanceCount"] == 3


def test_aws_docs_example_event_is_classified_through_the_handler(world, context, handler):
    name = "89c96cc8-dded-4739-afcc-6f1dc936701d"
    world.jobs.add(name, instance_type="InstanceType", count=3)  # the docs' placeholder instance type
    world.trail.add(name)
    response = handler(sqs_event(event_text("sagemaker_training_job_state_change_aws_docs.json")), context)
    assert response == {"batchItemFailures": []}
    (record,) = world.store.records().values()
    assert record.eventbridge_event_id == "844e2571-85d4-695f-b930-0153b71dcb42"
    assert record.flops.hardware_ceiling.known_instance is False  # unknown type: conservative default, warned


def attributes(sent: dict) -> dict[str, str]:
    return {name: value["StringValue"] for name, value in sent["MessageAttributes"].items()}


@pytest.fixture
def handler_metrics(handler, monkeypatch: pytest.MonkeyPatch) -> FakeMetrics:
    """The function's own metrics, recorded (after ``handler`` is built: its decorators keep the real ones)."""
    fake = FakeMetrics()
    monkeypatch.setattr(classifier, "metrics", fake)
    return fake


def test_one_bad_record_fails_alone_and_in_progress_is_acknowledged(world, context, handler):
    """Without a dead-letter queue configured, a malformed record is a batch-item failure (redrive policy)."""
    for name in ("llama3-8b-sft-001", "llama3-8b-sft-002"):
        world.jobs.add(name, status="Completed")
        world.trail.add(name)
    event = sqs_event(
        event_text("training_job_completed.json"),
        "{not json",
        event_text("training_job_in_progress.json"),
        event_text("training_job_failed.json"),
    )
    response = handler(event, context)
    assert failed_ids(response) == [event["Records"][1]["messageId"]]
    assert len(world.store.records()) == 2  # sft-001 (Completed) and sft-002; the InProgress one wrote nothing
    assert world.metrics.counts["JobsClassified"] == 2


def test_an_all_bad_batch_reports_every_record_without_raising(world, context, handler):
    event = sqs_event("", "[]", "null")
    assert len(failed_ids(handler(event, context))) == 3


def test_in_progress_after_completed_changes_nothing(world, context, handler):
    world.jobs.add("llama3-8b-sft-001")
    world.trail.add("llama3-8b-sft-001")
    handler(sqs_event(event_text("training_job_completed.json")), context)
    before = dict(world.store.objects)
    response = handler(sqs_event(event_text("training_job_in_progress.json")), context)
    assert response == {"batchItemFailures": []} and world.store.objects == before


def test_duplicate_event_in_one_batch_writes_one_record(world, context, handler):
    world.jobs.add("llama3-8b-sft-001")
    world.trail.add("llama3-8b-sft-001")
    body = event_text("training_job_completed.json")
    assert handler(sqs_event(body, body), context) == {"batchItemFailures": []}
    assert len(world.store.records()) == 1 and world.metrics.counts["DuplicateDelivery"] == 1


def test_transient_failure_is_reported_for_retry_and_not_dead_lettered(world, dlq, context, handler):
    world.jobs.add("llama3-8b-sft-001")  # no CloudTrail event yet, job ended 20 min ago
    response = handler(sqs_event(event_text("training_job_completed.json")), context)
    assert len(failed_ids(response)) == 1 and world.store.records() == {}  # lineage index entries only
    assert dlq.sent == []  # retried after the visibility timeout; the redrive policy is the last resort


@pytest.mark.parametrize("name", sorted(n for n, c in MANIFEST.items() if c["outcome"] == "malformed"))
def test_bad_input_corpus_is_dead_lettered_at_once_with_a_bounded_reason(
    name, world, dlq, context, handler_metrics, handler
):
    body = (EVENTS / "bad" / name).read_text()
    with pytest.raises(MalformedEvent) as caught:
        classifier.parse_event(body)
    assert MANIFEST[name]["reason_mentions"] in str(caught.value)
    assert len(str(caught.value)) <= classifier.MAX_REASON
    assert "a" * 200 not in str(caught.value)  # the input is never echoed back
    event = sqs_event(body)
    response = handler(event, context)

    assert response == {"batchItemFailures": []}  # handled: SQS deletes it from the classifier queue
    (sent,) = dlq.sent
    assert sent["QueueUrl"] == DLQ_URL and sent["MessageBody"] == body  # the original body, unchanged
    attrs = attributes(sent)
    assert attrs[contract.DLQ_ATTR_ERROR] == "MalformedEvent"
    assert MANIFEST[name]["reason_mentions"] in attrs[contract.DLQ_ATTR_REASON]
    assert all(len(v) <= classifier.MAX_REASON and "a" * 200 not in v for v in attrs.values())
    assert attrs[contract.DLQ_ATTR_SOURCE_MESSAGE_ID] == event["Records"][0]["messageId"]
    assert attrs[contract.DLQ_ATTR_RECEIVE_COUNT] == "1"
    assert sent["MessageAttributes"][contract.DLQ_ATTR_RECEIVE_COUNT]["DataType"] == "Number"
    failed_at = datetime.fromisoformat(attrs[contract.DLQ_ATTR_FAILED_AT])
    assert abs(datetime.now(UTC) - failed_at) < timedelta(minutes=1)
    assert world.store.objects == {} and world.metrics.counts["JobsClassified"] == 0
    assert handler_metrics.counts == {"MalformedEvent": 1, "DeadLettered": 1}


def test_event_for_a_job_that_no_longer_exists_is_dead_lettered_with_its_name(world, dlq, context, handler):
    body = (EVENTS / "bad" / "job_does_not_exist.json").read_text()
    event = classifier.parse_event(body)
    dlq.refuse = "AccessDenied"
    with pytest.raises(JobNotFound):  # the send refused: the original error is raised (batch-item failure)
        classifier.record_handler(classifier.SQSRecord(sqs_event(body)["Records"][0]), world.container)
    assert event.is_terminal and dlq.sent == []
    dlq.refuse = None

    dlq_event = sqs_event(body)
    dlq_event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "2"
    assert failed_ids(handler(dlq_event, context)) == []
    (sent,) = dlq.sent
    attrs = attributes(sent)
    assert attrs[contract.DLQ_ATTR_ERROR] == "JobNotFound" and attrs[contract.DLQ_ATTR_JOB] == event.job_name
    assert attrs[contract.DLQ_ATTR_RECEIVE_COUNT] == "2"
    assert attrs[contract.DLQ_ATTR_SOURCE_QUEUE] == dlq_event["Records"][0]["eventSourceARN"]
    assert event.job_name in attrs[contract.DLQ_ATTR_REASON]


@pytest.mark.parametrize("code", ["AccessDenied", "ThrottlingException", "AWS.SimpleQueueService.NonExistentQueue"])
def test_a_failed_dead_letter_send_falls_back_to_a_batch_item_failure(
    code, world, dlq, context, handler_metrics, handler
):
    dlq.refuse = code
    good = event_text("training_job_completed.json")
    world.jobs.add("llama3-8b-sft-001")
    world.trail.add("llama3-8b-sft-001")
    event = sqs_event("{not json", good)
    response = handler(event, context)
    assert failed_ids(response) == [event["Records"][0]["messageId"]]  # left to the redrive policy: not lost
    assert dlq.sent == [] and len(world.store.records()) == 1
    assert handler_metrics.counts["DeadLetterSendFailed"] == 1 and handler_metrics.counts["DeadLettered"] == 0


def test_no_dead_letter_queue_configured_falls_back_to_a_batch_item_failure(world, context, handler_metrics, handler):
    event = sqs_event("{not json")
    assert failed_ids(handler(event, context)) == [event["Records"][0]["messageId"]]
    assert handler_metrics.counts["DeadLetterSendFailed"] == 1


def test_invalid_settings_fail_the_invocation_so_nothing_is_lost(context, monkeypatch):
    """The real entry point: settings that fail validation fail the whole invocation (SQS redelivers every record,
    the redrive policy keeps them), with the setting named; nothing is cached, so a fixed stack recovers."""
    monkeypatch.delenv("AUDIT_BUCKET_NAME", raising=False)
    with pytest.raises(SettingsError, match="AUDIT_BUCKET_NAME"):
        classifier.lambda_handler(sqs_event("{not json"), context)
    assert classifier.process_container.cache_info().currsize == 0


def test_a_refused_audit_write_is_dead_lettered_with_the_aws_error(world, dlq, context, monkeypatch, handler):
    world.jobs.add("llama3-8b-sft-001")
    world.trail.add("llama3-8b-sft-001")

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise PermanentStoreError("S3 PutObject: AccessDenied (test)")

    monkeypatch.setattr(world.store, "put_record", refuse)
    response = handler(sqs_event(event_text("training_job_completed.json")), context)
    assert failed_ids(response) == []
    (sent,) = dlq.sent
    assert attributes(sent)[contract.DLQ_ATTR_ERROR] == "PermanentStoreError"
    assert "AccessDenied" in attributes(sent)[contract.DLQ_ATTR_REASON]


def test_dead_letter_attributes_are_bounded_and_sqs_safe():
    letter = DeadLetter(
        reason="x\x00y" + "z" * 5000,
        error="E" * 400,
        source_message_id="m",
        receive_count=3,
        failed_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    attrs = {k: v["StringValue"] for k, v in message_attributes(letter).items()}
    assert len(attrs[contract.DLQ_ATTR_REASON]) == 1000 and attrs[contract.DLQ_ATTR_REASON].startswith("x?y")
    assert len(attrs[contract.DLQ_ATTR_ERROR]) <= 256
    assert attrs[contract.DLQ_ATTR_FAILED_AT] == "2026-01-02T03:04:05.000+00:00"
    assert contract.DLQ_ATTR_JOB not in attrs and contract.DLQ_ATTR_SOURCE_QUEUE not in attrs
    assert len(attrs) <= 10  # SQS allows 10 message attributes
    empty = DeadLetter(reason="", error="E", source_message_id="m", receive_count=1, failed_at=datetime.now(UTC))
    assert message_attributes(empty)[contract.DLQ_ATTR_REASON]["StringValue"]  # SQS refuses empty values


def test_fixture_events_have_the_status_their_name_says():
    for name, status in (
        ("training_job_completed.json", "Completed"),
        ("training_job_failed.json", "Failed"),
        ("training_job_stopped.json", "Stopped"),
        ("training_job_in_progress.json", "InProgress"),
    ):
        assert event_json(name)["detail"]["TrainingJobStatus"] == status
    assert END.tzinfo is not None
