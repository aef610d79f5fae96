"""Handler tests: SQS events built from tests/events/*.json, a tiny Lambda context, the service on fakes."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.unit.service.conftest import World

EVENTS = Path(__file__).resolve().parents[2] / "events"


@dataclass
class FakeContext:
    function_name: str = "flopsmeter-classifier"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:flopsmeter-classifier"
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"


def sqs_record(body: str, message_id: str | None = None) -> dict:
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "AQEB" + uuid.uuid4().hex,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1700000000000",
            "SenderId": "AIDA",
            "ApproximateFirstReceiveTimestamp": "1700000000001",
        },
        "messageAttributes": {},
        "md5OfBody": "0",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:flopsmeter-classifier",
        "awsRegion": "eu-west-1",
    }


def sqs_event(*bodies: str) -> dict:
    return {"Records": [sqs_record(b) for b in bodies]}


def event_text(name: str) -> str:
    return (EVENTS / name).read_text()


def event_json(name: str) -> dict:
    return json.loads(event_text(name))


@pytest.fixture
def context() -> FakeContext:
    return FakeContext()


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    """The classifier handler wired to fakes (its dependencies() getter replaced); no dead-letter queue configured
    (``dead_letter_queue`` gives None, as without DEAD_LETTER_QUEUE_URL) unless the ``dlq`` fixture is used too."""
    from lambdas.classifier import handler

    w = World()
    monkeypatch.setattr(handler, "dependencies", lambda: (w.deps, w.config))
    monkeypatch.setattr(handler, "dead_letter_queue", lambda: None)
    return w


DLQ_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/flopsmeter-classifier-dlq"


class FakeSqs:
    """The one SQS call the handler makes (SendMessage), recorded; ``refuse`` makes it fail like AWS would."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.refuse: str | None = None  # an AWS error code, e.g. "AccessDenied"

    def send_message(self, **kwargs: object) -> dict:
        if self.refuse:
            raise ClientError({"Error": {"Code": self.refuse, "Message": "refused (test)"}}, "SendMessage")
        self.sent.append(dict(kwargs))
        return {"MessageId": f"dlq-{len(self.sent)}"}


@pytest.fixture
def dlq(world: World, monkeypatch: pytest.MonkeyPatch) -> FakeSqs:
    """The handler's dead-letter queue, on a fake SQS client (attributes and bodies recorded)."""
    from flopsmeter.aws.dead_letters import DeadLetterQueue
    from lambdas.classifier import handler

    sqs = FakeSqs()
    queue = DeadLetterQueue(sqs, DLQ_URL)
    monkeypatch.setattr(handler, "dead_letter_queue", lambda: queue)
    return sqs
