"""Sending a permanently failed message to the dead-letter queue at once, with why it failed.

The classifier does this itself for a permanent failure (a malformed event, a job SageMaker does not know, a
refused write) instead of letting SQS redeliver it ``maxReceiveCount`` times first: the original body goes to the
DLQ unchanged, with SQS message attributes that say why (names in ``flopsmeter.contract``). Attribute values are
bounded and cleaned to what SQS accepts, so a long or odd reason never makes the send fail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from flopsmeter import contract
from flopsmeter.aws.errors import translate

MAX_REASON_CHARS = 1000
MAX_NAME_CHARS = 256  # message ids, error types, queue ARNs and job names are far shorter
# Characters SQS refuses in a message or attribute value (it accepts #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD and above).
_NOT_SQS_TEXT = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class DeadLetter:
    """Why one message is dead-lettered, and where it came from."""

    reason: str
    error: str
    source_message_id: str
    receive_count: int
    failed_at: datetime
    source_queue_arn: str | None = None
    job_name: str | None = None


def _text(value: str, limit: int) -> str:
    """``value`` as an SQS-acceptable, non-empty string of at most ``limit`` characters."""
    cleaned = _NOT_SQS_TEXT.sub("?", value).strip()
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1] + "…"
    return cleaned or "-"


def message_attributes(letter: DeadLetter) -> dict[str, dict[str, str]]:
    """The SQS ``MessageAttributes`` of a dead-lettered message (every value bounded, none empty)."""

    def string(value: str, limit: int = MAX_NAME_CHARS) -> dict[str, str]:
        return {"DataType": "String", "StringValue": _text(value, limit)}

    attributes = {
        contract.DLQ_ATTR_REASON: string(letter.reason, MAX_REASON_CHARS),
        contract.DLQ_ATTR_ERROR: string(letter.error),
        contract.DLQ_ATTR_SOURCE_MESSAGE_ID: string(letter.source_message_id),
        contract.DLQ_ATTR_RECEIVE_COUNT: {"DataType": "Number", "StringValue": str(max(0, int(letter.receive_count)))},
        contract.DLQ_ATTR_FAILED_AT: string(letter.failed_at.astimezone(UTC).isoformat(timespec="milliseconds")),
    }
    if letter.source_queue_arn:
        attributes[contract.DLQ_ATTR_SOURCE_QUEUE] = string(letter.source_queue_arn)
    if letter.job_name:
        attributes[contract.DLQ_ATTR_JOB] = string(letter.job_name)
    return attributes


class DeadLetterQueue:
    """The classifier queue's dead-letter queue, written to directly (``sqs:SendMessage`` on it only)."""

    def __init__(self, sqs_client: Any, queue_url: str) -> None:
        self.sqs = sqs_client
        self.queue_url = queue_url

    def send(self, body: str, letter: DeadLetter) -> str:
        """Send ``body`` unchanged with the attributes of ``letter``; returns the DLQ message id.

        Raises ``TransientError`` / ``PermanentError`` (throttled, refused, too large, no such queue): the caller
        then leaves the message to the redrive policy, so nothing is lost.
        """
        try:
            reply = self.sqs.send_message(
                QueueUrl=self.queue_url, MessageBody=body, MessageAttributes=message_attributes(letter)
            )
        except (ClientError, BotoCoreError) as err:
            raise translate(err, "SQS SendMessage to the dead-letter queue") from err
        return str(reply["MessageId"])
