"""Amazon Bedrock's "Model Customization Job State Change" event: AWS's documented example, replayed unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from moto.events.models import EventPattern
from pydantic import ValidationError

from flopsmeter.contract import model_customization_job_state_change_pattern
from flopsmeter.functions.inbound import ModelCustomizationJobStateChange

AWS_DOCS_EXAMPLE = Path(__file__).parents[2] / "events" / "bedrock_model_customization_job_state_change_aws_docs.json"


def _example() -> dict[str, object]:
    document: dict[str, object] = json.loads(AWS_DOCS_EXAMPLE.read_text())
    return document


def test_the_documented_example_parses_unchanged() -> None:
    event = ModelCustomizationJobStateChange.model_validate_json(AWS_DOCS_EXAMPLE.read_text())
    assert (event.id, event.job_name, event.status, event.is_terminal) == ("UUID", "abcd-wxyz", "Failed", True)
    assert event.detail.jobArn == "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/abcdefghwxyz"
    assert event.detail.endTime is not None and event.detail.endTime.isoformat() == "2023-08-11T12:34:56+00:00"
    assert event.detail.hyperParameters == {"batchSize": "1", "epochCount": "5", "learningRate": "0.05",
                                            "learningRateWarmupSteps": "10"}  # fmt: skip


def test_the_rule_pattern_takes_the_documented_example_and_only_terminal_statuses() -> None:
    pattern = EventPattern.load(json.dumps(model_customization_job_state_change_pattern()))
    event = _example()
    assert pattern.matches_event(event)
    for status, terminal in (("InProgress", False), ("Stopping", False), ("Completed", True), ("Stopped", True)):
        event["detail"]["jobStatus"] = status  # type: ignore[index]
        assert pattern.matches_event(event) is terminal


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("source",), "aws.sagemaker"),
        (("detail-type",), "SageMaker Training Job State Change"),
        (("detail", "jobName"), "../../etc/passwd"),
        (("detail", "jobStatus"), "Exploded"),
        (("detail", "jobArn"), "arn:aws:sagemaker:us-east-1:123456789012:training-job/x"),
    ],
)
def test_events_that_are_not_bedrock_customization_state_changes_are_refused(path: tuple[str, ...], value: str) -> None:
    event = _example()
    target = event
    for key in path[:-1]:
        target = target[key]  # type: ignore[assignment]
    target[path[-1]] = value
    with pytest.raises(ValidationError):
        ModelCustomizationJobStateChange.model_validate(event)


def test_new_fields_from_aws_do_not_make_the_event_malformed() -> None:
    event = _example()
    event["detail"]["customizationType"] = "REINFORCEMENT_FINE_TUNING"  # type: ignore[index]
    event["detail"]["somethingNew"] = {"nested": [1, 2]}  # type: ignore[index]
    assert ModelCustomizationJobStateChange.model_validate(event).job_name == "abcd-wxyz"
