"""Classifier function: SQS batch of EventBridge "SageMaker Training Job State Change" events (and Amazon Bedrock
"Model Customization Job State Change" events, told apart by ``source``).

Per record: parse (Powertools parser), set the correlation id to the EventBridge event id, ignore non-terminal
statuses, call the service. One bad record never fails the others, and nothing is dropped silently:

* a PERMANENT failure (``PermanentError``: malformed event, unknown job, refused write) is sent to the dead-letter
  queue at once by the function itself, body unchanged, with SQS message attributes that say why
  (``flopsmeter.aws.dead_letters``); the record is then reported as handled, so SQS deletes it from the queue. If
  that send fails (throttled, refused, no DLQ configured), the record is reported as a batch-item failure instead
  and the queue's redrive policy moves it after ``maxReceiveCount`` receives, as for any other failure;
* a TRANSIENT failure or an unexpected error is a batch-item failure: SQS redelivers it after the visibility
  timeout, and the redrive policy moves it to the DLQ (without attributes) after ``maxReceiveCount`` receives.
  One exception (organization mode): a member account's reader role that still cannot be assumed on the last
  delivery (``MAX_RECEIVE_COUNT``) is dead-lettered by the function itself, so the DLQ says which role and why.

The event's ``account`` and ``region`` choose whose credentials read the job, and where
(``ClassifierContainer.deps_for``): the function's own for its own account and region, the account's reader role
with clients in the event's region otherwise. A job from a region the deployment does not serve (neither its own
nor a member region) is dead-lettered at once with that reason, and an alert is sent (``RegionNotServed``).

The reason is always logged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from flopsmeter.contract import ServiceMetric
from flopsmeter.errors import MalformedEvent, MemberRoleUnavailable, PermanentError, RegionNotServed, TransientError
from flopsmeter.functions.container import ClassifierContainer, build_classifier
from flopsmeter.functions.context import InvocationContext
from flopsmeter.functions.dead_lettering import send_to_dead_letters
from flopsmeter.functions.inbound import (
    MAX_REASON,
    BatchServiceJobStateChange,
    JobStateChange,
    ModelCustomizationJobStateChange,
    TrainingJobStateChange,
    TrainingSessionEnded,
    parse_inbound,
)
from flopsmeter.functions.observability import logger, metrics, tracer
from flopsmeter.functions.settings import ClassifierSettings
from flopsmeter.service.batch import classify_batch_service_job
from flopsmeter.service.bedrock import classify_bedrock_job
from flopsmeter.service.classifier import ClassifyResult, classify_and_record
from flopsmeter.service.dependencies import ClassifyRequest, Dependencies, ServiceConfig
from flopsmeter.service.sessions import classify_training_session

Handler = Callable[[dict[str, Any], InvocationContext], PartialItemFailureResponse]
Classify = Callable[[ClassifyRequest, Dependencies, ServiceConfig], ClassifyResult]

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@functools.cache
def process_container() -> ClassifierContainer:
    """This execution environment's container: settings validated and clients built once, at the first invocation."""
    return build_classifier(ClassifierSettings.from_env(), metrics=metrics, log=logger)


def dead_letter(
    record: SQSRecord,
    err: PermanentError | MemberRoleUnavailable,
    log_fields: dict[str, Any],
    container: ClassifierContainer,
) -> bool:
    """Send ``record`` to the DLQ with why it failed; False (and logged) when it could not be sent."""
    return send_to_dead_letters(record, err, log_fields, container.dead_letters, metrics=metrics, logger=logger)


# The events this function reads, and the use case that classifies each kind (one line per kind).
CLASSIFIERS: dict[type[JobStateChange], Classify] = {
    TrainingJobStateChange: classify_and_record,
    ModelCustomizationJobStateChange: classify_bedrock_job,
    TrainingSessionEnded: classify_training_session,  # issue 26: Stop/DeleteTrainingSession calls
    BatchServiceJobStateChange: classify_batch_service_job,  # issue 26: AWS Batch service jobs
}


def parse_event(body: str) -> JobStateChange:
    """The SQS body as a job state change (``flopsmeter.functions.inbound``), or ``MalformedEvent`` with a short
    reason (no input echoed)."""
    event: JobStateChange = parse_inbound(body, accept=tuple(CLASSIFIERS))
    return event


def record_handler(record: SQSRecord, container: ClassifierContainer) -> ClassifyResult | None:
    logger.set_correlation_id(record.message_id)
    log_fields = {"message_id": record.message_id, "receive_count": record.attributes.approximate_receive_count}
    try:
        event = parse_event(record.body)
        logger.set_correlation_id(event.id)
        log_fields |= {"job": event.job_name, "event_status": event.status, "event_source": event.source}
        if not event.is_terminal and not getattr(event, "READ_BEFORE_END", False):
            metrics.add_metric(name=ServiceMetric.NON_TERMINAL_IGNORED, unit="Count", value=1)
            logger.info("non-terminal status; acknowledged and ignored", extra=log_fields)
            return None
        log_fields["account"] = event.account or ""
        deps = container.deps_for(event.account, event.region)
        classify = CLASSIFIERS[type(event)]
        request = ClassifyRequest(event.job_name, event.id, arn=getattr(event, "session_arn", None))
        return classify(request, deps, container.config)
    except MemberRoleUnavailable as err:
        member_role_unavailable(record, err, log_fields, container)
        return None
    except RegionNotServed as err:
        from flopsmeter.service.regions import alert_region_not_served

        alert_region_not_served(err, log_fields.get("job"), container.deps, container.config)
        logger.error("job in a region this deployment does not serve; dead-lettered", extra=log_fields | {
            "reason": str(err)[:MAX_REASON], "region": err.region})  # fmt: skip
        if dead_letter(record, err, log_fields, container):
            return None
        raise
    except MalformedEvent as err:
        metrics.add_metric(name=ServiceMetric.MALFORMED_EVENT, unit="Count", value=1)
        logger.error("malformed event; will end in the dead-letter queue", extra=log_fields | {"reason": str(err)})
        if dead_letter(record, err, log_fields, container):
            return None  # handled: SQS deletes it from the queue; the DLQ holds it with its reason
        raise
    except PermanentError as err:
        metrics.add_metric(name=ServiceMetric.PERMANENT_FAILURE, unit="Count", value=1)
        logger.error(
            "permanent failure; will end in the dead-letter queue",
            extra=log_fields | {"reason": str(err)[:MAX_REASON], "error": type(err).__name__},
        )
        if dead_letter(record, err, log_fields, container):
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


def member_role_unavailable(
    record: SQSRecord, err: MemberRoleUnavailable, log_fields: dict[str, Any], container: ClassifierContainer
) -> None:
    """Retried like any transient failure; on the queue's last delivery, dead-lettered with the role and the reason."""
    metrics.add_metric(name=ServiceMetric.ASSUME_ROLE_FAILED, unit="Count", value=1)
    fields = log_fields | {"reason": str(err)[:MAX_REASON], "role_arn": err.role_arn, "error_code": err.code}
    receives = int(record.attributes.approximate_receive_count or 0)
    last = container.max_receive_count is not None and receives >= container.max_receive_count
    if last:
        logger.error("member role still unavailable on the last delivery; dead-lettering with the reason", extra=fields)
        if dead_letter(record, err, log_fields, container):
            return
    else:
        logger.warning("member role unavailable; the message will be retried", extra=fields)
    raise err


def handler_for(container: Callable[[], ClassifierContainer]) -> Handler:
    """The Lambda entry point over the container ``container()`` returns (the local runner and tests pass theirs)."""

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics(capture_cold_start_metric=True)
    @tracer.capture_lambda_handler(capture_response=False)
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
        current = container()
        return process_partial_response(
            event=event,
            record_handler=functools.partial(record_handler, container=current),
            processor=processor,
            context=context,
        )

    entry: Handler = lambda_handler  # the decorators are untyped
    return entry


lambda_handler = handler_for(process_container)
