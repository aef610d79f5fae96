"""SageMaker job state changes -> EventBridge rule -> encrypted SQS queue (+ DLQ) -> classifier Lambda.

The numbers, and why (docs/infra.md has the table):
- function timeout ``CLASSIFIER_TIMEOUT`` (60 s) for a batch of ``BATCH_SIZE`` (5) records: a record is a
  handful of AWS calls (SageMaker, CloudWatch, CloudTrail, S3, EventBridge, SNS), about a second each at worst.
- queue visibility timeout = 6 x the function timeout (AWS's recommendation for SQS event sources, so a
  throttled or retried batch is not redelivered while still in flight). It is also the retry interval
  while the classifier waits for CloudTrail to show the job's CreateTrainingJob event (typically ~5 minutes,
  up to ~15): a record that is not ready yet is reported as a batch item failure and comes back after it.
- maxReceiveCount covers that wait (``cloudtrail_max_wait_seconds`` / visibility, rounded up), one final
  receive that records CloudTrail as ``not_found``, and ``SPARE_RECEIVES`` for transient failures; only
  after that does the redrive policy move a message to the DLQ, which alarms at the first message. A permanent
  failure (malformed event, unknown job) does not wait for that: the classifier sends it to the DLQ itself on
  its first delivery, with the reason as message attributes (``DEAD_LETTER_QUEUE_URL``, ``grant_dead_letter``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from flopsmeter.contract import (
    batch_service_job_state_change_pattern,
    max_receive_count,
    model_customization_job_state_change_pattern,
    training_job_state_change_pattern,
    training_session_end_pattern,
)
from infra.constructs.functions import ServiceFunction
from infra.constructs.messaging import EVENTS, MessagingKey, RuleTarget, from_rules

CLASSIFIER_TIMEOUT = Duration.seconds(60)
VISIBILITY_TIMEOUT = Duration.seconds(6 * 60)  # 6 x CLASSIFIER_TIMEOUT
BATCH_SIZE = 5
QUEUE_RETENTION = Duration.days(4)
DLQ_RETENTION = Duration.days(14)  # the SQS maximum: two weeks to notice, fix and redrive


def dead_letter_queue(scope: Construct, key: MessagingKey, removal_policy: RemovalPolicy) -> sqs.Queue:
    """``DeadLetters`` under ``scope``: encrypted with the messaging key, TLS only, kept ``DLQ_RETENTION``."""
    return sqs.Queue(
        scope,
        "DeadLetters",
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key.key,
        data_key_reuse=Duration.hours(1),
        enforce_ssl=True,
        retention_period=DLQ_RETENTION,
        removal_policy=removal_policy,
    )


def event_pattern(pattern: dict[str, object]) -> events.EventPattern:
    """A raw EventBridge pattern (``flopsmeter.contract``'s JSON shape) as CDK's ``EventPattern``."""
    fields = {"detail-type": "detail_type"}
    return events.EventPattern(**{fields.get(k, k): v for k, v in pattern.items()})  # type: ignore[arg-type]


@dataclass(frozen=True)
class EventSource:
    """What a rule into the classifier queue matches: a label for its description and the contract's pattern."""

    what: str
    pattern: Callable[[], dict[str, object]]


TRAINING_SOURCE = EventSource("SageMaker training jobs", training_job_state_change_pattern)
BEDROCK_SOURCE = EventSource("Amazon Bedrock model customization jobs", model_customization_job_state_change_pattern)
# issue 26: a training session ends by a call (Stop/DeleteTrainingSession, CloudTrail); a Batch service job by its event
SESSION_SOURCE = EventSource("SageMaker training sessions stopped or deleted", training_session_end_pattern)
BATCH_SOURCE = EventSource("AWS Batch service jobs", batch_service_job_state_change_pattern)
# every source of the classifier queue besides training jobs (the default), with the rule ids per bus
EXTRA_SOURCES = (
    ("ModelCustomizationJobEnded", BEDROCK_SOURCE),
    ("TrainingSessionEnded", SESSION_SOURCE),
    ("BatchServiceJobEnded", BATCH_SOURCE),
)


class ClassifierQueue(Construct):
    """The buffer in front of the classifier. Exposes ``queue``, ``dead_letter_queue`` and ``rule``; ``feed``
    connects the classifier, ``grant_dead_letter`` lets it dead-letter a permanent failure itself."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: MessagingKey,
        cloudtrail_max_wait_seconds: int,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = key.key
        self.dead_letter_queue = dead_letter_queue(self, key, removal_policy)
        self.max_receive_count = max_receive_count(cloudtrail_max_wait_seconds, int(VISIBILITY_TIMEOUT.to_seconds()))
        redrive = sqs.DeadLetterQueue(queue=self.dead_letter_queue, max_receive_count=self.max_receive_count)
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key.key,
            data_key_reuse=Duration.hours(1),
            enforce_ssl=True,
            visibility_timeout=VISIBILITY_TIMEOUT,
            retention_period=QUEUE_RETENTION,
            dead_letter_queue=redrive,
            removal_policy=removal_policy,
        )
        self._key = self.messaging_key = key
        self.rule = self.add_source(None, "TrainingJobEnded")
        self.bedrock_rule, self.session_rule, self.batch_rule = (
            self.add_source(None, rule_id, source) for rule_id, source in EXTRA_SOURCES
        )

    def add_source(
        self, bus: events.IEventBus | None, construct_id: str, source: EventSource | None = None
    ) -> events.Rule:
        """A rule on ``bus`` (None: the account's default bus) sending ``source``'s terminal state changes here
        (default: SageMaker training jobs).

        Events EventBridge itself cannot deliver (after its own 24 h of retries) land in the same DLQ, with the
        event as the message body, so one redrive handles both kinds. EventBridge may deliver into either queue
        only for the rules made here (``aws:SourceArn``: no confused deputy)."""
        source = source or TRAINING_SOURCE
        rule = events.Rule(
            self,
            construct_id,
            event_bus=bus,
            description=f"{source.what} that reached a terminal status -> FLOPs Meter classifier queue",
            event_pattern=event_pattern(source.pattern()),
            targets=[RuleTarget(self.queue.queue_arn, dead_letter_queue=self.dead_letter_queue)],
        )
        for queue in (self.queue, self.dead_letter_queue):
            queue.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"Only{construct_id}Rule",
                    principals=[iam.ServicePrincipal(EVENTS)],
                    actions=["sqs:SendMessage"],
                    resources=[queue.queue_arn],
                    conditions=from_rules(rule),
                )
            )
        self._key.allow_eventbridge_delivery()
        return rule

    def feed(self, classifier: ServiceFunction, *, max_concurrency: int) -> None:
        """Let the classifier consume the queue in batches, reporting per-record failures."""
        classifier.function.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=BATCH_SIZE,
                report_batch_item_failures=True,
                max_concurrency=max_concurrency,
            )
        )

    def grant_dead_letter(self, role: iam.IRole) -> None:
        """``sqs:SendMessage`` on the dead-letter queue only, and its key: the classifier puts a permanently failed
        message there at once, with the reason as message attributes."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DeadLetterPermanentFailures",
                actions=["sqs:SendMessage"],
                resources=[self.dead_letter_queue.queue_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DeadLetterKey", actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self.key.key_arn]
            )
        )
