"""Alerts and the operations view: an encrypted SNS topic, alarms, and one CloudWatch dashboard.

The business metrics are the classifier's Powertools EMF metrics: namespace ``SERVICE_METRICS_NAMESPACE``,
dimension ``service`` = ``SERVICE_NAME`` (both from ``flopsmeter.contract`` and set on every function, so code
and dashboard agree). Names are ``flopsmeter.contract.ServiceMetric``.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from flopsmeter.contract import SERVICE_METRICS_NAMESPACE, SERVICE_NAME, ServiceMetric
from infra.constructs.functions import ServiceFunction
from infra.constructs.messaging import CLOUDWATCH, EVENTS, MessagingKey, from_alarms, from_rules
from infra.constructs.nag import acknowledge

STALE_MESSAGE_SECONDS = 2 * 3600  # older than the CloudTrail wait + retries: the pipeline is stuck


def service_metric(name: ServiceMetric, statistic: str = "Sum", period: Duration | None = None) -> cw.Metric:
    return cw.Metric(
        namespace=SERVICE_METRICS_NAMESPACE,
        metric_name=name.value,
        dimensions_map={"service": SERVICE_NAME},
        statistic=statistic,
        period=period or Duration.hours(1),
    )


class AlertTopic(Construct):
    """Exposes ``topic``: SNS, encrypted with ``key``, TLS only.

    ``enforce_ssl`` makes CDK write a topic policy, and a topic policy replaces SNS's default one: so every
    service that publishes is allowed here explicitly, conditioned on its source (``infra.constructs.messaging``):
    this account's CloudWatch alarms always, EventBridge rules through ``allow_rules``. The functions publish
    through their IAM roles (``grant_publish``)."""

    def __init__(self, scope: Construct, construct_id: str, *, key: MessagingKey, email: str | None) -> None:
        super().__init__(scope, construct_id)
        self.key = key
        self.topic = sns.Topic(self, "Topic", display_name="FLOPs Meter alerts", master_key=key.key, enforce_ssl=True)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal(CLOUDWATCH)],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=from_alarms(),
            )
        )
        key.allow_cloudwatch_alarms()
        if email:
            self.topic.add_subscription(subs.EmailSubscription(email))

    def allow_rules(self, sid: str, *rules: events.IRule) -> None:
        """Let these EventBridge rules (and no other) publish to the topic."""
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid=sid,
                principals=[iam.ServicePrincipal(EVENTS)],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=from_rules(*rules),
            )
        )
        self.key.allow_eventbridge_delivery()

    def grant_publish(self, role: iam.IRole) -> None:
        self.topic.grant_publish(role)
        acknowledge(
            role,
            "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
            "CDK's SNS publish grant for the topic's CMK; limited to that one key.",
        )


class Monitoring(Construct):
    """The dashboard and the alarms; every alarm notifies ``topic``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topic: sns.ITopic,
        dead_letter_queue: sqs.IQueue,
        queue: sqs.IQueue,
        provenance_dead_letter_queue: sqs.IQueue,
        functions: Sequence[ServiceFunction],
        dashboard_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarms: list[cw.Alarm] = []
        five_minutes = Duration.minutes(5)
        dlq_depth = dead_letter_queue.metric_approximate_number_of_messages_visible(
            period=five_minutes, statistic="Maximum"
        )
        oldest = queue.metric_approximate_age_of_oldest_message(period=five_minutes, statistic="Maximum")
        provenance_dlq_depth = provenance_dead_letter_queue.metric_approximate_number_of_messages_visible(
            period=five_minutes, statistic="Maximum"
        )
        write_failed = service_metric(ServiceMetric.AUDIT_WRITE_FAILED, period=five_minutes)
        reconcile_failed = service_metric(ServiceMetric.RECONCILE_FAILED, period=five_minutes)
        errors = {fn.node.id: fn.function.metric_errors(period=five_minutes, statistic="Sum") for fn in functions}
        alarms = [
            ("DeadLettersAlarm", dlq_depth, 1,
             "A training-job event could not be classified and is in the dead-letter queue."),
            ("StaleQueueAlarm", oldest, STALE_MESSAGE_SECONDS,
             "Events wait in the classifier queue for longer than the CloudTrail wait allows."),
            *[(f"{name}ErrorsAlarm", metric, 1, f"The {name} function failed an invocation.")
              for name, metric in errors.items()],
            ("AuditWriteFailedAlarm", write_failed, 1, "The classifier could not write an audit record."),
            ("ReconcileFailedAlarm", reconcile_failed, 1,
             "The reconciler could not classify an ended training job that has no record, or could not list a member "
             "account's jobs (retried first in the next run)."),
            ("ProvenanceDeadLettersAlarm", provenance_dlq_depth, 1,
             "A launch call could not be delivered to the provenance function and is in its dead-letter queue."),
        ]  # fmt: skip
        action = cw_actions.SnsAction(topic)
        for alarm_id, metric, threshold, description in alarms:
            self._alarm(alarm_id, metric, threshold=threshold, action=action, description=description)
        self.dashboard = self._dashboard(
            dashboard_name,
            [dlq_depth.with_(label="classifier"), provenance_dlq_depth.with_(label="provenance")],
            oldest,
            errors=[
                *[metric.with_(label=name) for name, metric in errors.items()],
                write_failed.with_(label="audit write failed"),
                reconcile_failed.with_(label="reconcile failed"),
            ],
        )

    def _dashboard(
        self, name: str, dlq_depths: list[cw.IMetric], oldest: cw.IMetric, *, errors: list[cw.IMetric]
    ) -> cw.Dashboard:
        """Business metrics on the first row, the pipeline's health on the second, every alarm on the third."""
        dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=name, default_interval=Duration.days(7))
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Jobs classified (per hour)", width=8, left=[service_metric(ServiceMetric.JOBS_CLASSIFIED)]
            ),
            cw.GraphWidget(
                title="Threshold crossings (per hour)",
                width=8,
                left=[
                    service_metric(ServiceMetric.THRESHOLD_EXCEEDED).with_(label="exceeds"),
                    service_metric(ServiceMetric.THRESHOLD_APPROACHING).with_(label="approaching"),
                ],
            ),
            cw.GraphWidget(
                title="Largest job / its threshold (strictest policy)",
                width=8,
                left=[service_metric(ServiceMetric.THRESHOLD_RATIO, statistic="Maximum")],
                left_annotations=[cw.HorizontalAnnotation(value=1.0, label="threshold")],
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(title="Dead-letter queue depth", width=8, left=dlq_depths),
            cw.GraphWidget(title="Oldest message in the classifier queue (s)", width=8, left=[oldest]),
            cw.GraphWidget(title="Errors", width=8, left=errors),
        )
        dashboard.add_widgets(cw.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24))
        return dashboard

    def _alarm(
        self, construct_id: str, metric: cw.IMetric, *, threshold: float, action: cw_actions.SnsAction, description: str
    ) -> cw.Alarm:
        alarm = cw.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(action)
        self.alarms.append(alarm)
        return alarm
