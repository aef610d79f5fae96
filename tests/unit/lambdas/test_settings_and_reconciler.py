"""Lambda settings (validated once, clear errors) and the reconciler handler."""

from __future__ import annotations

import pytest

from lambdas.reconciler import handler as reconciler
from lambdas.shared.settings import Settings, SettingsError
from lambdas.shared.wiring import service_config


def test_settings_defaults_and_values():
    settings = Settings.from_env(
        {
            "AUDIT_BUCKET_NAME": "flopsmeter-audit",
            "APPROACHING_FRACTION": "0.9",
            "PRIMARY_POLICY": "eu-guideline-2025-07",
            "ALERT_TOPIC_ARN": "",
            "UNRELATED": "ignored",
        }
    )
    assert settings.RETENTION_YEARS == 10 and settings.ALERT_TOPIC_ARN is None
    config = service_config(settings)
    assert config.approaching_fraction == 0.9 and config.primary_policy == "eu-guideline-2025-07"
    assert config.alerts_enabled is False


@pytest.mark.parametrize(
    ("env", "mentions"),
    [
        ({}, "AUDIT_BUCKET_NAME"),
        ({"AUDIT_BUCKET_NAME": "b-ok", "PRIMARY_POLICY": "made-up"}, "unknown policy"),
        ({"AUDIT_BUCKET_NAME": "b-ok", "APPROACHING_FRACTION": "1.5"}, "APPROACHING_FRACTION"),
        ({"AUDIT_BUCKET_NAME": "b-ok", "CLOUDTRAIL_MAX_WAIT_SECONDS": "soon"}, "CLOUDTRAIL_MAX_WAIT_SECONDS"),
        ({"AUDIT_BUCKET_NAME": "b-ok", "ALERT_TOPIC_ARN": "not-an-arn"}, "ALERT_TOPIC_ARN"),
        ({"AUDIT_BUCKET_NAME": "b-ok", "DEAD_LETTER_QUEUE_URL": "arn:aws:sqs:eu-west-1:1:q"}, "DEAD_LETTER_QUEUE_URL"),
        (
            {"AUDIT_BUCKET_NAME": "b-ok", "DEAD_LETTER_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/12/q.fifo"},
            "DEAD_LETTER_QUEUE_URL",
        ),
    ],
)
def test_invalid_settings_fail_with_a_clear_message(env, mentions):
    with pytest.raises(SettingsError, match=mentions):
        Settings.from_env(env)


@pytest.mark.parametrize(
    "url",
    [
        "https://sqs.eu-west-1.amazonaws.com/123456789012/FlopsMeter-prod-IntakeDeadLetters1A2B3C-Xyz",
        "http://127.0.0.1:49152/123456789012/flopsmeter-classifier-dlq",  # the local emulator
    ],
)
def test_dead_letter_queue_url_is_optional_and_validated(url):
    assert Settings.from_env({"AUDIT_BUCKET_NAME": "b-ok"}).DEAD_LETTER_QUEUE_URL is None
    configured = Settings.from_env({"AUDIT_BUCKET_NAME": "b-ok", "DEAD_LETTER_QUEUE_URL": url})
    assert url == configured.DEAD_LETTER_QUEUE_URL


def test_reconciler_handler_reports_what_it_did(monkeypatch, context):
    from tests.unit.service.conftest import World

    w = World()
    w.jobs.add("lost-event")
    w.trail.add("lost-event")
    settings = Settings.from_env({"AUDIT_BUCKET_NAME": "flopsmeter-audit", "RECONCILE_LOOKBACK_HOURS": "6"})
    monkeypatch.setattr(reconciler, "dependencies", lambda: (w.deps, w.config, settings))
    reply = reconciler.lambda_handler({"source": "aws.events", "detail-type": "Scheduled Event"}, context)
    assert reply["recorded"] == ["lost-event"] and reply["seen"] == 1
    assert len(w.store.records()) == 1
