"""SageMaker HyperPod on the emulator (issue 26 point 3): the reports queue the stack provisions, the real HyperPod
function run the way Lambda runs it (the SQS event source mapping, and the daily schedule), and clients acting with a
job's role credentials, so a report's ``SenderId`` is the job's as SQS would set it (``moto_ext.hyperpod``)."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flopsmeter.local.clients import client
from flopsmeter.local.provision import LocalResources
from flopsmeter.local.runner import Handler, lambda_sqs_event, local_clients, local_context, open_log

REPORTS_QUEUE = "flopsmeter-hyperpod-reports"
REPORTS_DLQ = "flopsmeter-hyperpod-reports-dlq"


@dataclass(frozen=True)
class ReportsQueue:
    url: str
    arn: str
    dlq_url: str


def provision_reports_queue(resources: LocalResources) -> ReportsQueue:
    """The reports queue and its dead-letter queue, as the stack's ``HyperPodReports`` makes them (idempotent)."""
    sqs = client("sqs", resources.endpoint, resources.region)
    dlq_url = sqs.create_queue(QueueName=REPORTS_DLQ)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})
    url = sqs.create_queue(QueueName=REPORTS_QUEUE, Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return ReportsQueue(url, arn, dlq_url)


def hyperpod_handler(resources: LocalResources, queue: ReportsQueue) -> Handler:
    """The real HyperPod function over a container built from the stack's settings, aimed at the emulator."""
    from flopsmeter.functions import hyperpod
    from flopsmeter.functions.observability import logger, metrics
    from flopsmeter.functions.settings import HyperPodSettings

    env = {**resources.lambda_env(), "DEAD_LETTER_QUEUE_URL": queue.dlq_url}
    settings = HyperPodSettings.from_env(env)
    container = hyperpod.build_hyperpod(settings, local_clients(resources), metrics=metrics, log=logger)
    return hyperpod.handler_for(lambda: container)


def drain_reports(resources: LocalResources, queue: ReportsQueue, handler: Handler, log_path: Path | None) -> int:
    """Deliver the reports queue to the handler until it is empty; returns how many messages were handled."""
    sqs = client("sqs", resources.endpoint, resources.region)
    stream = open_log(log_path)
    handled = 0
    for _ in range(50):
        messages = sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                       MessageAttributeNames=["All"]).get("Messages", [])  # fmt: skip
        if not messages:
            break
        event = lambda_sqs_event(messages, queue_arn=queue.arn, region=resources.region)
        with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
            reply = handler(event, local_context(resources, "flopsmeter-hyperpod"))
        failed = {str(f["itemIdentifier"]) for f in (reply or {}).get("batchItemFailures", [])}
        for m in messages:
            if m["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=m["ReceiptHandle"])
                handled += 1
    return handled


def run_cluster_pass(resources: LocalResources, handler: Handler, log_path: Path | None) -> dict[str, Any]:
    """The daily schedule's invocation (EventBridge Scheduled Event): yesterday, every cluster."""
    event = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    with contextlib.redirect_stdout(open_log(log_path)), contextlib.redirect_stderr(open_log(log_path)):
        return dict(handler(event, local_context(resources, "flopsmeter-hyperpod")))


def role_clients(resources: LocalResources, role_arn: str, session: str) -> Any:
    """A client factory (service, region_name=...) acting with ``role_arn``'s credentials in session ``session``."""
    import boto3

    creds = client("sts", resources.endpoint, resources.region).assume_role(RoleArn=role_arn, RoleSessionName=session)[
        "Credentials"
    ]
    boto = boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=resources.region,
    )

    def make(service: str, region_name: str | None = None) -> Any:
        return boto.client(service, region_name=region_name or resources.region, endpoint_url=resources.endpoint)  # type: ignore[call-overload]

    return make
