"""Classifier Lambda: SQS batch of EventBridge "SageMaker Training Job State Change" events.

Per record: parse (Powertools parser), set the correlation id to the EventBridge event id, ignore non-terminal
statuses, call the service. One bad record never fails the others, and nothing is dropped silently:

* a PERMANENT failure (``PermanentError``: malformed event, unknown job, refused write) is sent to the dead-letter
  queue at once by the handler itself, body unchanged, with SQS message attributes that say why
  (``flopsmeter.aws.dead_letters``); the record is then reported as handled, so SQS deletes it from the queue. If
  that send fails (throttled, refused, no DLQ configured), the record is reported as a batch-item failure instead
  and the queue's redrive policy moves it after ``maxReceiveCount`` receives, as for any other failure;
* a TRANSIENT failure or an unexpected error is a batch-item failure: SQS redelivers it after the visibility
  timeout, and the redrive policy moves it to the DLQ (without attributes) after ``maxReceiveCount`` receives.

The reason is always logged.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from flopsmeter.service.classifier import ClassifyRequest, ClassifyResult, Dependencies, ServiceConfig
from flopsmeter.service.classifier import classify_and_record as _classify_and_record
from flopsmeter.service.errors import MalformedEvent, PermanentError, TransientError
from flopsmeter.service.events import TrainingJobStateChange
from lambdas.shared.observability import logger, metrics, tracer
from lambdas.shared.settings import settings

if TYPE_CHECKING:
    from flopsmeter.aws.dead_letters import DeadLetterQueue

MALFORMED_EVENT = "MalformedEvent"
PERMANENT_FAILURE = "PermanentFailure"
IGNORED_NON_TERMINAL = "NonTerminalIgnored"
DEAD_LETTERED = "DeadLettered"
DEAD_LETTER_SEND_FAILED = "DeadLetterSendFailed"
MAX_REASON = 1000

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@functools.cache
def dependencies() -> tuple[Dependencies, ServiceConfig]:
    """Settings are validated and clients built once per container, at the first invocation."""
    from lambdas.shared.wiring import aws_dependencies, service_config

    current = settings()
    return aws_dependencies(current), service_config(current)


@functools.cache
def dead_letter_queue() -> DeadLetterQueue | None:
    """The DLQ the handler sends permanent failures to (``DEAD_LETTER_QUEUE_URL``); None when not configured."""
    url = settings().DEAD_LETTER_QUEUE_URL
    if not url:
        return None
    from flopsmeter.aws.clients import client
    from flopsmeter.aws.dead_letters import DeadLetterQueue

    return DeadLetterQueue(client("sqs"), url)


def dead_letter(record: SQSRecord, err: PermanentError, log_fields: dict[str, Any]) -> bool:
    """Send ``record`` to the DLQ with why it failed; False (and logged) when it could not be sent."""
    from flopsmeter.aws.dead_letters import DeadLetter

    reason = str(err)[:MAX_REASON]
    try:
        queue = dead_letter_queue()
        if queue is None:
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
        dead_letter_id = queue.send(record.body, letter)
    except Exception as send_err:  # noqa: BLE001 - any failure here falls back to the redrive policy: nothing lost
        metrics.add_metric(name=DEAD_LETTER_SEND_FAILED, unit="Count", value=1)
        logger.warning(
            "dead-letter send failed; the message is left to the queue's redrive policy",
            extra=log_fields | {"send_error": f"{type(send_err).__name__}: {send_err}"[:MAX_REASON]},
        )
        return False
    metrics.add_metric(name=DEAD_LETTERED, unit="Count", value=1)
    logger.warning(
        "sent to the dead-letter queue",
        extra=log_fields | {"dead_letter_message_id": dead_letter_id, "error": type(err).__name__, "reason": reason},
    )
    return True


def parse_event(body: str) -> TrainingJobStateChange:
    """The SQS body as a state-change event, or ``MalformedEvent`` with a short reason (no input echoed)."""
    try:
        # parse() validates a JSON string directly (pydantic validate_json), though it is typed for dicts
        event: TrainingJobStateChange = parse(event=body, model=TrainingJobStateChange)  # type: ignore[call-overload]
        return event
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
            for e in err.errors(include_url=False, include_input=False)[:10]
        )
        raise MalformedEvent(f"not a SageMaker Training Job State Change event: {problems}"[:MAX_REASON]) from None


def record_handler(record: SQSRecord) -> ClassifyResult | None:
    logger.set_correlation_id(record.message_id)
    log_fields = {"message_id": record.message_id, "receive_count": record.attributes.approximate_receive_count}
    try:
        event = parse_event(record.body)
        logger.set_correlation_id(event.id)
        log_fields |= {"job": event.job_name, "event_status": event.detail.TrainingJobStatus}
        if not event.is_terminal:
            metrics.add_metric(name=IGNORED_NON_TERMINAL, unit="Count", value=1)
            logger.info("non-terminal status; acknowledged and ignored", extra=log_fields)
            return None
        deps, config = dependencies()
        return _classify_and_record(ClassifyRequest(event.job_name, event.id), deps, config)
    except MalformedEvent as err:
        metrics.add_metric(name=MALFORMED_EVENT, unit="Count", value=1)
        logger.error("malformed event; will end in the dead-letter queue", extra=log_fields | {"reason": str(err)})
        if dead_letter(record, err, log_fields):
            return None  # handled: SQS deletes it from the queue; the DLQ holds it with its reason
        raise
    except PermanentError as err:
        metrics.add_metric(name=PERMANENT_FAILURE, unit="Count", value=1)
        logger.error(
            "permanent failure; will end in the dead-letter queue",
            extra=log_fields | {"reason": str(err)[:MAX_REASON], "error": type(err).__name__},
        )
        if dead_letter(record, err, log_fields):
            return None
        raise
    except TransientError as err:
        logger.warning(
            "transient failure; the message will be retried",
            extra=log_fields | {"reason": str(err)[:MAX_REASON], "error": type(err).__name__},
        )
        raise
    except Exception:
        logger.exception("unexpected error; the message will be retried", extra=log_fields)
        raise


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
