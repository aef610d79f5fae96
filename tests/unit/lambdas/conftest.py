"""Function tests: the real function bodies over a container of fakes (tests.support), no AWS."""

from __future__ import annotations

import dataclasses

import pytest

from flopsmeter.aws.dead_letters import DeadLetterQueue
from flopsmeter.functions import classifier
from flopsmeter.local.runner import LocalLambdaContext
from tests.support.fakes import DLQ_URL, FakeSqs, World
from tests.support.lambda_context import lambda_context


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


@pytest.fixture
def dlq(world: World) -> FakeSqs:
    """The function's dead-letter queue, on a fake SQS client (attributes and bodies recorded)."""
    sqs = FakeSqs()
    world.container = dataclasses.replace(world.container, dead_letters=DeadLetterQueue(sqs, DLQ_URL))
    return sqs
