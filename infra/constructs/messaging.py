"""The key of the queues and the alert topic, and how AWS services may deliver into them.

Every service principal that publishes or sends here is allowed explicitly, conditioned on its source:
- CloudWatch alarms -> the alert topic: the topic policy and this key's policy both require
  ``aws:SourceAccount`` = this account and ``aws:SourceArn`` like this account's and region's alarms.
- EventBridge rules -> the classifier queue, its dead-letter queue, the alert topic: each queue or topic policy
  requires ``aws:SourceArn`` = the delivering rule (``RuleTarget`` adds no grant of its own). This key's
  statement for EventBridge carries no source condition: AWS does not pass ``aws:SourceArn``/``aws:SourceAccount``
  to KMS for EventBridge's deliveries to encrypted SQS queues and SNS topics, so a condition there would drop
  every event silently. It allows only GenerateDataKey and Decrypt, and only through those policies' gates.
"""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from aws_cdk.interfaces.aws_events import IRuleRef
from constructs import Construct

EVENTS = "events.amazonaws.com"
MAX_EVENT_AGE = Duration.hours(24)  # EventBridge's longest retry window
CLOUDWATCH = "cloudwatch.amazonaws.com"


def alarm_arns() -> str:
    """Every CloudWatch alarm of this account and region (an ARN pattern)."""
    return f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"


def from_alarms() -> dict[str, Any]:
    """The source conditions of a CloudWatch alarm's request."""
    return {"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}, "ArnLike": {"aws:SourceArn": alarm_arns()}}


def from_rules(*rules: events.IRule) -> dict[str, Any]:
    """The source conditions of an EventBridge delivery by one of ``rules``."""
    return {
        "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
        "ArnEquals": {"aws:SourceArn": [rule.rule_arn for rule in rules]},
    }


class MessagingKey(Construct):
    """Exposes ``key``; ``allow_*`` add each service's key-policy statement once."""

    def __init__(self, scope: Construct, construct_id: str, *, removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            enable_key_rotation=True,
            removal_policy=removal_policy,
            description="FLOPs Meter queues and alert topic",
        )
        self._allowed: set[str] = set()

    def allow_cloudwatch_alarms(self) -> None:
        self._allow_once(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal(CLOUDWATCH)],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions=from_alarms(),
            )
        )

    def allow_eventbridge_delivery(self) -> None:
        self._allow_once(
            iam.PolicyStatement(
                sid="EventBridgeDelivery",
                principals=[iam.ServicePrincipal(EVENTS)],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
            )
        )

    def _allow_once(self, statement: iam.PolicyStatement) -> None:
        if statement.sid not in self._allowed:
            self._allowed.add(str(statement.sid))
            self.key.add_to_resource_policy(statement)


@jsii.implements(events.IRuleTarget)
class RuleTarget:
    """An EventBridge target by ARN, with retries and an optional dead-letter queue, that grants nothing: the
    target's owner allows the rule in its own policy (``from_rules``)."""

    def __init__(
        self,
        arn: str,
        *,
        dead_letter_queue: sqs.IQueue | None = None,
        retry_attempts: int = 185,
        max_event_age: Duration = MAX_EVENT_AGE,
    ) -> None:
        self.arn = arn
        self.dead_letter_queue = dead_letter_queue
        self.retry_attempts = retry_attempts
        self.max_event_age = max_event_age

    def bind(self, rule: IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        dead_letters = self.dead_letter_queue
        return events.RuleTargetConfig(
            arn=self.arn,
            dead_letter_config=events.CfnRule.DeadLetterConfigProperty(arn=dead_letters.queue_arn)
            if dead_letters
            else None,
            retry_policy=events.CfnRule.RetryPolicyProperty(
                maximum_event_age_in_seconds=int(self.max_event_age.to_seconds()),
                maximum_retry_attempts=self.retry_attempts,
            ),
        )
