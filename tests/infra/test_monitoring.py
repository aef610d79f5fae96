"""Alerts and the dashboard read what the service emits and reach the topic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flopsmeter.contract import SERVICE_METRICS_NAMESPACE, SERVICE_NAME, ServiceMetric
from tests.infra.policy import resolve
from tests.infra.template import EMAIL, Synthesized

pytestmark = pytest.mark.infra


DASHBOARD_METRICS = {
    ServiceMetric.JOBS_CLASSIFIED,
    ServiceMetric.THRESHOLD_EXCEEDED,
    ServiceMetric.THRESHOLD_APPROACHING,
    ServiceMetric.THRESHOLD_RATIO,
    ServiceMetric.AUDIT_WRITE_FAILED,
    ServiceMetric.RECONCILE_FAILED,
}
ALARMED_METRICS = {ServiceMetric.AUDIT_WRITE_FAILED, ServiceMetric.RECONCILE_FAILED}  # issue 12.10: ReconcileFailed


def _dashboard_metrics(synth: Synthesized) -> list[list[object]]:
    (dashboard,) = synth.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.loads(resolve(dashboard["Properties"]["DashboardBody"]))
    return [metric for widget in body["widgets"] for metric in widget["properties"].get("metrics", [])]


def test_the_dashboard_name_carries_the_region(synth: Synthesized) -> None:
    """Issue 24.4: dashboard names are account-wide; the stack deploys once per account *and region*."""
    ((dashboard_id, dashboard),) = synth.of_type("AWS::CloudWatch::Dashboard").items()
    name = {"Fn::Join": ["", ["FlopsMeter-prod-", {"Ref": "AWS::Region"}]]}
    assert dashboard["Properties"]["DashboardName"] == name
    assert synth.template["Outputs"]["DashboardName"]["Value"] == {"Ref": dashboard_id}  # Ref: the name


def test_dashboard_reads_the_service_metrics_where_the_functions_emit_them(synth: Synthesized) -> None:
    service_metrics = [m for m in _dashboard_metrics(synth) if m[0] == SERVICE_METRICS_NAMESPACE]
    # [namespace, name, "service", SERVICE_NAME, {options}]: the namespace and dimension the functions are given.
    assert {m[1] for m in service_metrics} == {m.value for m in DASHBOARD_METRICS}
    assert all(m[2:4] == ["service", SERVICE_NAME] for m in service_metrics)
    names = {m[1] for m in _dashboard_metrics(synth)}
    assert {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage", "Errors"} <= names
    for fn in synth.of_type("AWS::Lambda::Function").values():
        env = fn["Properties"]["Environment"]["Variables"]
        assert (env["POWERTOOLS_METRICS_NAMESPACE"], env["POWERTOOLS_SERVICE_NAME"]) == (
            SERVICE_METRICS_NAMESPACE,
            SERVICE_NAME,
        )


def test_service_metric_alarms_watch_the_contract_names_and_notify_the_topic(synth: Synthesized) -> None:
    topic_id, _ = synth.one("AWS::SNS::Topic")
    alarms = [
        a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Namespace") == SERVICE_METRICS_NAMESPACE
    ]
    assert {a["MetricName"] for a in alarms} == {m.value for m in ALARMED_METRICS}
    for alarm in alarms:
        assert alarm["Dimensions"] == [{"Name": "service", "Value": SERVICE_NAME}]
        assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]


def test_alert_topic_is_encrypted_and_mails_the_configured_address(synth: Synthesized) -> None:
    topic_id, topic = synth.one("AWS::SNS::Topic")
    assert "KmsMasterKeyId" in topic["Properties"]
    (subscription,) = synth.of_type("AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == EMAIL
    assert subscription["Properties"]["TopicArn"] == {"Ref": topic_id}


def test_every_service_metric_the_dashboard_or_alarms_read_is_emitted_by_the_functions() -> None:
    import flopsmeter

    package = Path(flopsmeter.__file__).parent
    code = "\n".join(p.read_text() for sub in ("service", "functions") for p in (package / sub).rglob("*.py"))
    emitted = {m for m in ServiceMetric if f"ServiceMetric.{m.name}" in code}
    assert emitted >= DASHBOARD_METRICS | ALARMED_METRICS
