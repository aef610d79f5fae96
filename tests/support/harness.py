"""The reliability harness: the real classifier function on moto, with the production boto3 client configuration
(``harness`` and ``_production_clients`` fixtures: imported by tests/reliability/conftest.py).

On top of ``tests.support.moto_world`` (moto ``mock_aws`` + ``flopsmeter.local.moto_ext``: object-locked bucket,
SQS queue with a redrive policy to a DLQ, EventBridge and SNS inboxes), the AWS dependencies here are built by
``flopsmeter.aws.clients.client`` itself (standard retry mode, 4 attempts, connect/read timeouts), so a fault
injected *below* botocore's retry loop (``before-send``) is retried exactly as in Lambda. botocore's back-off sleeps
are recorded instead of slept. Powertools log lines of the handler are captured as the JSON CloudWatch would get.

Emulated, not AWS: moto's Object Lock / If-None-Match / redrive behaviour, moto_ext's DescribeTrainingJob lifecycle
and CloudTrail LookupEvents. Lambda's SQS event source mapping is played by ``Harness.drain``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import botocore.endpoint
import pytest
from moto import mock_aws

from flopsmeter.aws.clients import client as production_client
from flopsmeter.aws.dead_letters import DeadLetterQueue
from flopsmeter.functions import classifier
from flopsmeter.functions.container import ClassifierContainer
from flopsmeter.functions.observability import logger as powertools_logger
from flopsmeter.local.runner import lambda_sqs_event
from tests.support.lambda_context import lambda_context
from tests.support.moto_world import ACCOUNT, REGION, Aws

DEPENDENCIES = ("sagemaker", "cloudwatch", "cloudtrail", "s3", "events", "sns")
MAX_RECEIVE_COUNT = 3  # the integration queue's redrive policy


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@dataclass
class Harness:
    aws: Aws
    log: _Lines
    slept: list[float]
    dlq_client: Any = None  # the classifier's own SQS client for its dead-letter sends
    responses: list[dict[str, Any]] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)

    def __getitem__(self, service: str) -> Any:
        return self.aws[service]

    def send(self, *bodies: str) -> None:
        for body in bodies:
            self.sent.append(body)
            self.aws["sqs"].send_message(QueueUrl=self.aws.classifier_queue, MessageBody=body)

    def drain(self, *, rounds: int = 10, batch: int = 10) -> list[dict[str, Any]]:
        """Lambda's SQS event source mapping: receive, invoke, delete the records that did not fail."""
        sqs, queue = self.aws["sqs"], self.aws.classifier_queue
        out = []
        for _ in range(rounds):
            messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=batch, AttributeNames=["All"]).get(
                "Messages", []
            )
            if not messages:
                break
            event = lambda_sqs_event(messages, queue_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:classifier", region=REGION)
            response = self.aws.handler(event, lambda_context())
            out.append(response)
            failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
            for m in messages:
                if m["MessageId"] not in failed:
                    sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
        self.responses += out
        return out

    def dead_letters(self) -> list[str]:
        return [m["Body"] for m in self.dead_letter_messages()]

    def dead_letter_messages(self) -> list[dict[str, Any]]:
        """Every DLQ message (consumed), with its message attributes (the reason, when the handler sent it)."""
        sqs, out = self.aws["sqs"], []
        while batch := sqs.receive_message(
            QueueUrl=self.aws.dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages"):
            for m in batch:
                out.append(m)
                sqs.delete_message(QueueUrl=self.aws.dlq, ReceiptHandle=m["ReceiptHandle"])
        return out

    def logged(self, message: str) -> list[dict[str, Any]]:
        return [line for line in self.log.lines if line.get("message") == message]

    def records(self) -> dict[str, Any]:
        store = self.aws.store
        return {item["Key"]: store.get_record(item["Key"]) for item in store.list_keys("records/")}


@pytest.fixture(scope="session")
def _production_clients() -> dict[str, Any]:
    """The classifier's own clients (flopsmeter.aws.clients: standard retries, timeouts), not its cached ones."""
    with mock_aws():
        return {s: production_client.__wrapped__(s, REGION) for s in (*DEPENDENCIES, "sqs")}


@pytest.fixture
def harness(aws: Aws, _production_clients: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    aws.clients.update({s: c for s, c in _production_clients.items() if s in DEPENDENCIES})
    # DEAD_LETTER_QUEUE_URL as the stack sets it, on the production client config (harness.dlq_client for faults)
    dead_letters = DeadLetterQueue(_production_clients["sqs"], aws.dlq)
    aws.handler = classifier.handler_for(lambda: ClassifierContainer(aws.deps(), aws.config, dead_letters))
    slept: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=slept.append))
    lines = _Lines()
    lines.setFormatter(powertools_logger.registered_formatter)
    powertools_logger.addHandler(lines)
    try:
        yield Harness(aws, lines, slept, dlq_client=_production_clients["sqs"])
    finally:
        powertools_logger.removeHandler(lines)
        for client in _production_clients.values():
            for hook in _HOOKS.pop(id(client), []):
                client.meta.events.unregister(*hook)


_HOOKS: dict[int, list[tuple[str, Any]]] = {}


def register_hook(client: Any, event: str, fn: Any) -> None:
    """Register a botocore event hook that the ``harness`` fixture removes after the test."""
    client.meta.events.register(event, fn)
    _HOOKS.setdefault(id(client), []).append((event, fn))
