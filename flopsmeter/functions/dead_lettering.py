"""Sending a permanently failed SQS message to its dead-letter queue with why (the classifier's and the HyperPod
function's): the reason as message attributes (``flopsmeter.aws.dead_letters``), counted and logged."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from flopsmeter.contract import ServiceMetric
from flopsmeter.functions.inbound import MAX_REASON

if TYPE_CHECKING:
    from flopsmeter.aws.dead_letters import DeadLetterQueue


def send_to_dead_letters(
    record: SQSRecord,
    err: Exception,
    log_fields: dict[str, Any],
    dead_letters: DeadLetterQueue | None,
    *,
    metrics: Any,
    logger: Any,
) -> bool:
    """Send ``record`` to the DLQ with why it failed; False (and logged) when it could not be sent. ``metrics`` and
    ``logger``: the calling function's (Powertools)."""
    from flopsmeter.aws.dead_letters import DeadLetter

    reason = str(err)[:MAX_REASON]
    try:
        if dead_letters is None:
            raise LookupError("DEAD_LETTER_QUEUE_URL is not set")
        letter = DeadLetter(
            reason=reason,
            error=type(err).__name__,
            source_message_id=record.message_id,
            receive_count=int(record.attributes.approximate_receive_count or 0),
            failed_at=datetime.now(UTC),
            source_queue_arn=record.get("eventSourceARN"),
            job_name=log_fields.get("job"),
        )
        dead_letter_id = dead_letters.send(record.body, letter)
    except Exception as send_err:  # noqa: BLE001 - any failure here falls back to the redrive policy: nothing lost
        metrics.add_metric(name=ServiceMetric.DEAD_LETTER_SEND_FAILED, unit="Count", value=1)
        logger.warning(
            "dead-letter send failed; the message is left to the queue's redrive policy",
            extra=log_fields | {"send_error": f"{type(send_err).__name__}: {send_err}"[:MAX_REASON]},
        )
        return False
    metrics.add_metric(name=ServiceMetric.DEAD_LETTERED, unit="Count", value=1)
    logger.warning(
        "sent to the dead-letter queue",
        extra=log_fields | {"dead_letter_message_id": dead_letter_id, "error": type(err).__name__, "reason": reason},
    )
    return True
