"""Amazon Bedrock "Model Customization Job State Change" events through the classifier function: AWS's documented
example replayed unchanged, non-terminal statuses, malformed Bedrock events."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flopsmeter.functions import classifier
from flopsmeter.functions.inbound import ModelCustomizationJobStateChange
from tests.support.lambda_context import event_text, sqs_event

DOCS_EVENT = "bedrock_model_customization_job_state_change_aws_docs.json"


def add_documented_job(world) -> dict:
    """The job AWS's sample event describes, as GetModelCustomizationJob would return it."""
    detail = json.loads(event_text(DOCS_EVENT))["detail"]
    job = world.bedrock.add("abcd-wxyz")
    job.update(
        {
            "jobArn": detail["jobArn"],
            "status": detail["jobStatus"],
            "failureMessage": detail["failureMessage"],
            "creationTime": datetime(2023, 8, 11, 10, 11, 12, tzinfo=UTC),
            "lastModifiedTime": datetime(2023, 8, 11, 12, 34, 56, tzinfo=UTC),
            "endTime": datetime(2023, 8, 11, 12, 34, 56, tzinfo=UTC),
            "baseModelArn": detail["baseModelArn"],
            "hyperParameters": detail["hyperParameters"],
        }
    )
    job.pop("customizationType")  # the sample does not say
    return job


def test_the_documented_event_parses_as_a_bedrock_event():
    event = classifier.parse_event(event_text(DOCS_EVENT))
    assert isinstance(event, ModelCustomizationJobStateChange)
    assert (event.job_name, event.status, event.is_terminal) == ("abcd-wxyz", "Failed", True)


def test_the_documented_event_is_classified_through_the_handler(world, context, handler):
    add_documented_job(world)
    response = handler(sqs_event(event_text(DOCS_EVENT)), context)
    assert response == {"batchItemFailures": []}
    ((key, record),) = world.store.records().items()
    assert key == "records/v1/account=123456789012/region=us-east-1/date=2023-08-11/bedrock.abcd-wxyz.json"
    assert record.eventbridge_event_id == "UUID"
    assert (record.job.status, record.job.failure_reason) == ("Failed", "Failure Message here.")
    assert record.flops.method == "estimated" and record.customization.service == "bedrock"
    estimate = record.customization.estimate
    assert estimate.technique == "rlaif"  # customizationType not stated: the costliest reading
    assert "epochCount 5" in estimate.tokens_basis and estimate.needs_declaration
    assert record.base_model.source == "unknown"  # "base-model-name" is no model the catalog knows
    assert any("not in the bundled catalog" in w for w in record.warnings)
    assert world.publisher.alerts  # a declaration is needed (and the bound exceeds)


def test_a_non_terminal_bedrock_event_is_acknowledged_and_ignored(world, context, handler):
    event = json.loads(event_text(DOCS_EVENT))
    event["detail"]["jobStatus"] = "InProgress"
    assert handler(sqs_event(json.dumps(event)), context) == {"batchItemFailures": []}
    assert world.store.records() == {}


def test_a_malformed_bedrock_event_says_which_event_it_is_not(world, context, handler, dlq):
    event = json.loads(event_text(DOCS_EVENT))
    event["detail"]["jobName"] = "../../etc/passwd"
    assert handler(sqs_event(json.dumps(event)), context) == {"batchItemFailures": []}
    ((_body, attributes),) = [(m["MessageBody"], m["MessageAttributes"]) for m in dlq.sent]
    assert attributes["flopsmeter-error"]["StringValue"] == "MalformedEvent"
    assert "not a Model Customization Job State Change event" in attributes["flopsmeter-reason"]["StringValue"]
