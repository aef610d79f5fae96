"""Function tests: the real function bodies over a container of fakes (tests.support), no AWS."""

from __future__ import annotations

import dataclasses

import pytest
from botocore.exceptions import ClientError

from flopsmeter.aws.dead_letters import DeadLetterQueue
from flopsmeter.functions import classifier
from flopsmeter.local.runner import LocalLambdaContext
from tests.support.fakes import World
from tests.support.lambda_context import lambda_context

DLQ_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/flopsmeter-classifier-dlq"


@pytest.fixture
def context() -> LocalLambdaContext:
    return lambda_context()


@pytest.fixture
def world() -> World:
    """Every dependency faked; no dead-letter queue configured (as without DEAD_LETTER_QUEUE_URL) unless the ``dlq``
    fixture is used too."""
    return World()


@pytest.fixture
def handler(world: World) -> classifier.Handler:
    """The classifier's Lambda entry point over the world's container (read at each invocation)."""
    return classifier.handler_for(lambda: world.container)


class FakeSqs:
    """The one SQS call the function makes (SendMessage), recorded; ``refuse`` makes it fail like AWS would."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.refuse: str | None = None  # an AWS error code, e.g. "AccessDenied"

    def send_message(self, **kwargs: object) -> dict:
        if self.refuse:
            raise ClientError({"Error": {"Code": self.refuse, "Message": "refused (test)"}}, "SendMessage")
        self.sent.append(dict(kwargs))
        return {"MessageId": f"dlq-{len(self.sent)}"}


@pytest.fixture
def dlq(world: World) -> FakeSqs:
    """The function's dead-letter queue, on a fake SQS client (attributes and bodies recorded)."""
    sqs = FakeSqs()
    world.container = dataclasses.replace(world.container, dead_letters=DeadLetterQueue(sqs, DLQ_URL))
    return sqs
