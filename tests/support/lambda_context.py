"""The one fake Lambda context of the test suite, and SQS events in the shape Lambda's event source mapping sends.

The context is the local runner's (``flopsmeter.local.runner.LocalLambdaContext``: what Powertools reads), so the
tests and ``flopsmeter local`` invoke functions the same way; so is the SQS event (``lambda_sqs_event``).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from flopsmeter.local.runner import LocalLambdaContext, lambda_sqs_event

REGION = "eu-west-1"
ACCOUNT = "123456789012"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:flopsmeter-classifier"
EVENTS = Path(__file__).resolve().parents[1] / "events"


def lambda_context(function_name: str = "flopsmeter-classifier") -> LocalLambdaContext:
    return LocalLambdaContext(function_name, region=REGION, account_id=ACCOUNT)


def sqs_event(*bodies: str, receive_count: int = 1) -> dict[str, Any]:
    """An SQS event with one record per body (fresh message ids), as the classifier receives it."""
    messages = [
        {
            "MessageId": str(uuid.uuid4()),
            "ReceiptHandle": "AQEB" + uuid.uuid4().hex,
            "Body": body,
            "Attributes": {"ApproximateReceiveCount": str(receive_count)},
        }
        for body in bodies
    ]
    return lambda_sqs_event(messages, queue_arn=QUEUE_ARN, region=REGION)


def scheduled_event(at: datetime, account: str = ACCOUNT, region: str = REGION) -> dict[str, Any]:
    """An EventBridge schedule's event, as a scheduled function receives it at ``at``."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [],
        "detail": {},
    }


def event_text(name: str) -> str:
    """A fixture event from tests/events/."""
    return (EVENTS / name).read_text()


def event_json(name: str) -> dict[str, Any]:
    return dict(json.loads(event_text(name)))
