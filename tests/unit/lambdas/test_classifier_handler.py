"""The classifier Lambda handler: parsing, partial batch failures, non-terminal statuses, the bad-input corpus."""

from __future__ import annotations

import json

import pytest

from flopsmeter.service.errors import JobNotFound, MalformedEvent
from lambdas.classifier import handler
from tests.unit.lambdas.conftest import EVENTS, event_json, event_text, sqs_event
from tests.unit.service.fakes import END

MANIFEST = json.loads((EVENTS / "bad" / "MANIFEST.json").read_text())["cases"]


def failed_ids(response: dict) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def test_aws_docs_example_event_parses_unchanged():
    event = handler.parse_event(event_text("sagemaker_training_job_state_change_aws_docs.json"))
    assert event.id == "844e2571-85d4-695f-b930-0153b71dcb42"
    assert event.job_name == "89c96cc8-dded-4739-afcc-6f1dc936701d" and event.is_terminal
    assert event.detail.TrainingEndTime.year == 2020  # "1583831889050": epoch milliseconds as a string
    assert event.detail.ResourceConfig["InstanceCount"] == 3


def test_aws_docs_example_event_is_classified_through_the_handler(world, context):
    name = "89c96cc8-dded-4739-afcc-6f1dc936701d"
    world.jobs.add(name, instance_type="InstanceType", count=3)  # the docs' placeholder instance type
    world.trail.add(name)
    response = handler.lambda_handler(
        sqs_event(event_text("sagemaker_training_job_state_change_aws_docs.json")), context
    )
    assert response == {"batchItemFailures": []}
    (record,) = world.store.records().values()
    assert record.eventbridge_event_id == "844e2571-85d4-695f-b930-0153b71dcb42"
    assert record.flops.hardware_ceiling.known_instance is False  # unknown type: conservative default, warned


def test_one_bad_record_fails_alone_and_in_progress_is_acknowledged(world, context):
    for name in ("llama3-8b-sft-001", "llama3-8b-sft-002"):
        world.jobs.add(name, status="Completed")
        world.trail.add(name)
    event = sqs_event(
        event_text("training_job_completed.json"),
        "{not json",
        event_text("training_job_in_progress.json"),
        event_text("training_job_failed.json"),
    )
    response = handler.lambda_handler(event, context)
    assert failed_ids(response) == [event["Records"][1]["messageId"]]
    assert len(world.store.records()) == 2  # sft-001 (Completed) and sft-002; the InProgress one wrote nothing
    assert world.metrics.counts["JobsClassified"] == 2


def test_an_all_bad_batch_reports_every_record_without_raising(world, context):
    event = sqs_event("", "[]", "null")
    assert len(failed_ids(handler.lambda_handler(event, context))) == 3


def test_in_progress_after_completed_changes_nothing(world, context):
    world.jobs.add("llama3-8b-sft-001")
    world.trail.add("llama3-8b-sft-001")
    handler.lambda_handler(sqs_event(event_text("training_job_completed.json")), context)
    before = dict(world.store.objects)
    response = handler.lambda_handler(sqs_event(event_text("training_job_in_progress.json")), context)
    assert response == {"batchItemFailures": []} and world.store.objects == before


def test_duplicate_event_in_one_batch_writes_one_record(world, context):
    world.jobs.add("llama3-8b-sft-001")
    world.trail.add("llama3-8b-sft-001")
    body = event_text("training_job_completed.json")
    assert handler.lambda_handler(sqs_event(body, body), context) == {"batchItemFailures": []}
    assert len(world.store.records()) == 1 and world.metrics.counts["DuplicateDelivery"] == 1


def test_transient_failure_is_reported_for_retry(world, context):
    world.jobs.add("llama3-8b-sft-001")  # no CloudTrail event yet, job ended 20 min ago
    response = handler.lambda_handler(sqs_event(event_text("training_job_completed.json")), context)
    assert len(failed_ids(response)) == 1 and world.store.objects == {}


@pytest.mark.parametrize("name", sorted(n for n, c in MANIFEST.items() if c["outcome"] == "malformed"))
def test_bad_input_corpus_is_malformed_with_a_reason(name, world, context, caplog):
    body = (EVENTS / "bad" / name).read_text()
    with pytest.raises(MalformedEvent) as caught:
        handler.parse_event(body)
    assert MANIFEST[name]["reason_mentions"] in str(caught.value)
    assert len(str(caught.value)) <= handler.MAX_REASON
    assert "a" * 200 not in str(caught.value)  # the input is never echoed back
    response = handler.lambda_handler(sqs_event(body), context)
    assert len(failed_ids(response)) == 1 and world.store.objects == {}
    assert world.metrics.counts["JobsClassified"] == 0


def test_event_for_a_job_that_no_longer_exists_is_a_permanent_failure(world, context):
    body = (EVENTS / "bad" / "job_does_not_exist.json").read_text()
    event = handler.parse_event(body)
    with pytest.raises(JobNotFound):
        handler.record_handler(handler.SQSRecord(sqs_event(body)["Records"][0]))
    assert event.is_terminal
    assert len(failed_ids(handler.lambda_handler(sqs_event(body), context))) == 1


def test_fixture_events_have_the_status_their_name_says():
    for name, status in (
        ("training_job_completed.json", "Completed"),
        ("training_job_failed.json", "Failed"),
        ("training_job_stopped.json", "Stopped"),
        ("training_job_in_progress.json", "InProgress"),
    ):
        assert event_json(name)["detail"]["TrainingJobStatus"] == status
    assert END.tzinfo is not None
