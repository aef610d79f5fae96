"""Play Lambda's SQS event source mapping on the emulator: moto delivers EventBridge -> SQS but runs no Lambda.

``drain`` receives batches from the classifier queue, calls the real classifier function
(``flopsmeter.functions.classifier``) in this process with the SQS event shape Lambda sends
(``Records[].messageId/receiptHandle/body/attributes/...``), over a container built from the settings the stack
sets (``LocalResources.lambda_env``) with clients aimed at the emulator, and
honours ``batchItemFailures`` like Lambda with ``ReportBatchItemFailures``: successes are deleted, failures stay
in the queue and reappear after the visibility timeout. A permanent failure is sent to the dead-letter queue by
the handler itself (``DEAD_LETTER_QUEUE_URL``) with its reason as message attributes, and reported as handled;
``drain`` marks those attempts ``dead_lettered`` from the DLQ's attributes. The redrive policy is SQS's own: moto
moves a message to the dead-letter queue once it has been received ``maxReceiveCount`` times (checked in moto
5.2.5, not emulated here). Handler logs (Powertools JSON, EMF metrics) go to a log file, not the terminal.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flopsmeter import contract
from flopsmeter.functions.context import InvocationContext
from flopsmeter.local.clients import client
from flopsmeter.local.provision import LOCAL_BATCH_SIZE, LocalResources

Handler = Callable[[dict[str, Any], InvocationContext], Any]
_log_stream: io.TextIOBase | None = None


@dataclass(frozen=True)
class Attempt:
    """One delivery of one message to the handler."""

    message_id: str
    receive_count: int
    ok: bool
    job_name: str | None
    event_id: str | None
    reason: str | None = None
    dead_lettered: bool = False  # handled by sending it to the DLQ (a permanent failure); ``reason`` says why


@dataclass
class DrainReport:
    invocations: int = 0
    attempts: list[Attempt] = field(default_factory=list)
    dead_lettered: list[dict[str, Any]] = field(default_factory=list)  # messages now in the DLQ (body + count)
    remaining: int = 0  # messages still in the queue when the deadline passed
    seconds: float = 0.0

    @property
    def succeeded(self) -> list[Attempt]:
        return [a for a in self.attempts if a.ok]

    @property
    def failed(self) -> list[Attempt]:
        return [a for a in self.attempts if not a.ok]


class LocalLambdaContext:
    """The attributes Powertools reads from a Lambda context, for a function run in this process."""

    def __init__(
        self,
        function_name: str = "flopsmeter-classifier",
        *,
        region: str = "eu-west-1",
        account_id: str = "123456789012",
        timeout_s: float = 60.0,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def local_context(resources: LocalResources, function_name: str = "flopsmeter-classifier") -> LocalLambdaContext:
    return LocalLambdaContext(function_name, region=resources.region, account_id=resources.account_id)


def local_clients(resources: LocalResources) -> Callable[[str], Any]:
    """The container's client factory: boto3 clients on the emulator (fake credentials)."""
    return lambda service: client(service, resources.endpoint, resources.region)


def classifier_handler(resources: LocalResources) -> Handler:
    """The real classifier function over a container built for this emulator (the stack's settings)."""
    from flopsmeter.functions import classifier
    from flopsmeter.functions.container import build_classifier
    from flopsmeter.functions.observability import logger, metrics
    from flopsmeter.functions.settings import ClassifierSettings

    settings = ClassifierSettings.from_env(resources.lambda_env())
    container = build_classifier(settings, local_clients(resources), metrics=metrics, log=logger)
    return classifier.handler_for(lambda: container)


def reconciler_handler(resources: LocalResources) -> Handler:
    """The real reconciler function over a container built for this emulator (the stack's settings)."""
    from flopsmeter.functions import reconciler
    from flopsmeter.functions.container import build_reconciler
    from flopsmeter.functions.observability import logger, metrics
    from flopsmeter.functions.settings import ReconcilerSettings

    settings = ReconcilerSettings.from_env(resources.lambda_env())
    container = build_reconciler(settings, local_clients(resources), metrics=metrics, log=logger)
    return reconciler.handler_for(lambda: container)


def open_log(path: Path | None) -> io.TextIOBase:
    """Where handler output goes: a file (kept open: Powertools binds its stream at import) or nowhere."""
    global _log_stream
    if _log_stream is None or _log_stream.closed:
        if path is None:
            _log_stream = io.StringIO()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            _log_stream = path.open("a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    return _log_stream


def sqs_event(messages: Sequence[dict[str, Any]], resources: LocalResources) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping passes to the function, for the emulator's queue."""
    return lambda_sqs_event(messages, queue_arn=resources.queue_arn, region=resources.region)


def lambda_sqs_event(messages: Sequence[dict[str, Any]], *, queue_arn: str, region: str) -> dict[str, Any]:
    """ReceiveMessage output in the shape Lambda's SQS event source mapping hands the function."""
    records = []
    for m in messages:
        attrs = m.get("Attributes", {})
        records.append(
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {
                    "ApproximateReceiveCount": attrs.get("ApproximateReceiveCount", "1"),
                    "SentTimestamp": attrs.get("SentTimestamp", str(int(time.time() * 1000))),
                    "SenderId": attrs.get("SenderId", "AIDAEXAMPLE"),
                    "ApproximateFirstReceiveTimestamp": attrs.get(
                        "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
                    ),
                },
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


def _identity(body: str) -> tuple[str | None, str | None]:
    try:
        event = json.loads(body)
        detail = event.get("detail") or {}
        # a training job's name, a Bedrock customization job's or a Batch service job's (``detail.jobName``), or the
        # training session a CloudTrail call ended (``requestParameters.trainingSessionName``)
        request = detail.get("requestParameters") if isinstance(detail, dict) else None
        session = request.get("trainingSessionName") if isinstance(request, dict) else None
        name = (detail.get("TrainingJobName") or detail.get("jobName") or session) if isinstance(detail, dict) else None
        return (str(name) if name is not None else None), (str(event["id"]) if event.get("id") else None)
    except (ValueError, AttributeError, TypeError):
        return None, None


def _failure_reasons(handler: Handler) -> dict[str, str]:
    """Per failed message id, the exception Powertools' batch processor caught (best effort)."""
    module = sys.modules.get(getattr(handler, "__module__", ""), None)
    processor = getattr(module, "processor", None)
    reasons: dict[str, str] = {}
    for record, info in zip(
        getattr(processor, "fail_messages", []), getattr(processor, "exceptions", []), strict=False
    ):
        message_id = getattr(record, "message_id", None) or (
            record.get("messageId") if isinstance(record, dict) else None
        )
        if message_id and info and info[0] is not None:
            reasons[str(message_id)] = f"{info[0].__name__}: {info[1]}"
    return reasons


def drain(
    resources: LocalResources,
    *,
    handler: Handler | None = None,
    deadline_s: float = 90.0,
    batch_size: int = LOCAL_BATCH_SIZE,
    log_path: Path | None = None,
    on_attempt: Callable[[Attempt], None] | None = None,
) -> DrainReport:
    """Deliver every message in the classifier queue to the handler until none is left (or the deadline)."""
    sqs: Any = client("sqs", resources.endpoint, resources.region)
    report = DrainReport()
    started = time.monotonic()
    stream = open_log(log_path)
    with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
        handler = handler or classifier_handler(resources)
    while time.monotonic() - started < deadline_s:
        messages = sqs.receive_message(
            QueueUrl=resources.queue_url,
            MaxNumberOfMessages=batch_size,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not messages:
            if _queue_empty(sqs, resources.queue_url):
                break
            time.sleep(0.2)
            continue
        _invoke(sqs, resources, handler, messages, report, stream, on_attempt)
    report.remaining = 0 if _queue_empty(sqs, resources.queue_url) else _queue_depth(sqs, resources.queue_url)
    report.dead_lettered = peek_dead_letters(resources)
    report.attempts = _mark_dead_lettered(report.attempts, report.dead_lettered)
    report.seconds = time.monotonic() - started
    return report


def _invoke(
    sqs: Any,
    resources: LocalResources,
    handler: Handler,
    messages: list[dict[str, Any]],
    report: DrainReport,
    stream: io.TextIOBase,
    on_attempt: Callable[[Attempt], None] | None,
) -> None:
    event = sqs_event(messages, resources)
    report.invocations += 1
    crash: str | None = None
    try:
        with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
            reply = handler(event, local_context(resources))
        failed = {str(f["itemIdentifier"]) for f in (reply or {}).get("batchItemFailures", [])}
    except Exception as err:  # noqa: BLE001 - a crashed invocation fails the whole batch, as in Lambda
        failed = {m["MessageId"] for m in messages}
        crash = f"invocation failed: {type(err).__name__}: {err}"
    reasons = {} if crash else _failure_reasons(handler)
    done = [m for m in messages if m["MessageId"] not in failed]
    for start in range(0, len(done), 10):
        sqs.delete_message_batch(
            QueueUrl=resources.queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
            ],
        )
    for m in messages:
        job, event_id = _identity(m["Body"])
        ok = m["MessageId"] not in failed
        attempt = Attempt(
            m["MessageId"],
            int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
            ok,
            job,
            event_id,
            None if ok else (crash or reasons.get(m["MessageId"]) or "reported as failed"),
        )
        report.attempts.append(attempt)
        if on_attempt:
            on_attempt(attempt)


def _mark_dead_lettered(attempts: list[Attempt], dead_letters: list[dict[str, Any]]) -> list[Attempt]:
    """Attempts the handler settled by dead-lettering the message, told by the DLQ's source-message-id attribute."""
    why = {d["source_message_id"]: d for d in dead_letters if d.get("source_message_id")}
    return [
        dataclasses.replace(
            a, dead_lettered=True, reason=f"{why[a.message_id]['error']}: {why[a.message_id]['reason']}"
        )
        if a.ok and a.message_id in why and a.receive_count == why[a.message_id]["deliveries"]
        else a
        for a in attempts
    ]


def _queue_depth(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
        ],
    )["Attributes"]
    return int(attrs.get("ApproximateNumberOfMessages", 0)) + int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0))


def _queue_empty(sqs: Any, url: str) -> bool:
    """Empty twice, 50 ms apart: moto counts visible and in-flight messages one after the other, so a message whose
    visibility timeout ends between the two counts is in neither (seen with 1 s timeouts)."""
    if _queue_depth(sqs, url):
        return False
    time.sleep(0.05)
    return _queue_depth(sqs, url) == 0


def peek_dead_letters(resources: LocalResources) -> list[dict[str, Any]]:
    """The messages in the DLQ, read without consuming them (received with visibility 0).

    A message the classifier dead-lettered itself carries why (``reason``, ``error``), the classifier queue's
    ``source_message_id`` and the delivery it failed on (``deliveries``), read from its message attributes; one
    the redrive policy moved has None there (its reason is only in the classifier log).
    """
    sqs = client("sqs", resources.endpoint, resources.region)
    seen: dict[str, dict[str, Any]] = {}
    for _ in range(10):
        batch = sqs.receive_message(
            QueueUrl=resources.dlq_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        new = [m for m in batch if m["MessageId"] not in seen]
        if not new:
            break
        for m in new:
            job, event_id = _identity(m["Body"])
            why = {k: v.get("StringValue") for k, v in m.get("MessageAttributes", {}).items()}
            deliveries = why.get(contract.DLQ_ATTR_RECEIVE_COUNT)
            seen[m["MessageId"]] = {
                "message_id": m["MessageId"],
                "body": m["Body"],
                "job_name": job,
                "event_id": event_id,
                "receive_count": int(m["Attributes"].get("ApproximateReceiveCount", 0)),
                "reason": why.get(contract.DLQ_ATTR_REASON),
                "error": why.get(contract.DLQ_ATTR_ERROR),
                "source_message_id": why.get(contract.DLQ_ATTR_SOURCE_MESSAGE_ID),
                "deliveries": int(deliveries) if deliveries and deliveries.isdigit() else None,
                "failed_at": why.get(contract.DLQ_ATTR_FAILED_AT),
            }
    return list(seen.values())


def put_state_change(resources: LocalResources, event: dict[str, Any]) -> str:
    """Put an EventBridge event on the default bus as SageMaker would; returns the new event id.

    EventBridge assigns its own id, time and account: the rule -> SQS target then carries the full envelope.
    """
    events = client("events", resources.endpoint, resources.region)
    detail = event.get("detail")
    reply = events.put_events(
        Entries=[
            {
                "Source": str(event.get("source", "")),
                "DetailType": str(event.get("detail-type", "")),
                "Detail": json.dumps(detail if detail is not None else {}),
                "Resources": [str(r) for r in event.get("resources", [])],
                "EventBusName": resources.event_bus_name,
            }
        ]
    )
    entry = reply["Entries"][0]
    if reply.get("FailedEntryCount"):
        raise ValueError(f"EventBridge refused the event: {entry.get('ErrorCode')}: {entry.get('ErrorMessage')}")
    return str(entry["EventId"])


def send_raw(resources: LocalResources, body: str) -> str:
    """Put a raw body straight on the classifier queue (what a misconfigured producer could do)."""
    sqs = client("sqs", resources.endpoint, resources.region)
    return str(sqs.send_message(QueueUrl=resources.queue_url, MessageBody=body)["MessageId"])
