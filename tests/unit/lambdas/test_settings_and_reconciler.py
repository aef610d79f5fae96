"""Per-function settings (each validates what it reads, clear errors) and the reconciler and digest functions."""

from __future__ import annotations

import pytest

from flopsmeter.functions import reconciler
from flopsmeter.functions.container import ReconcilerContainer
from flopsmeter.functions.settings import (
    ClassifierSettings,
    DigestSettings,
    ReconcilerSettings,
    SettingsError,
)
from tests.support.fakes import World


def test_settings_defaults_and_values():
    settings = ClassifierSettings.from_env(
        {
            "AUDIT_BUCKET_NAME": "flopsmeter-audit",
            "APPROACHING_FRACTION": "0.9",
            "PRIMARY_POLICY": "eu-guideline-2025-07",
            "ALERT_TOPIC_ARN": "",
            "UNRELATED": "ignored",
        }
    )
    assert settings.RETENTION_YEARS == 10 and settings.ALERT_TOPIC_ARN is None
    config = settings.service_config()
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
        ClassifierSettings.from_env(env)


@pytest.mark.parametrize(
    "url",
    [
        "https://sqs.eu-west-1.amazonaws.com/123456789012/FlopsMeter-prod-IntakeDeadLetters1A2B3C-Xyz",
        "http://127.0.0.1:49152/123456789012/flopsmeter-classifier-dlq",  # the local emulator
    ],
)
def test_dead_letter_queue_url_is_optional_and_validated(url):
    assert ClassifierSettings.from_env({"AUDIT_BUCKET_NAME": "b-ok"}).DEAD_LETTER_QUEUE_URL is None
    configured = ClassifierSettings.from_env({"AUDIT_BUCKET_NAME": "b-ok", "DEAD_LETTER_QUEUE_URL": url})
    assert url == configured.DEAD_LETTER_QUEUE_URL


def test_reconciler_handler_reports_what_it_did(context):
    w = World()
    w.jobs.add("lost-event")
    w.trail.add("lost-event")
    settings = ReconcilerSettings.from_env({"AUDIT_BUCKET_NAME": "flopsmeter-audit", "RECONCILE_LOOKBACK_HOURS": "6"})
    container = ReconcilerContainer(w.deps, w.config, lookback_hours=settings.RECONCILE_LOOKBACK_HOURS)
    handler = reconciler.handler_for(lambda: container)
    reply = handler({"source": "aws.events", "detail-type": "Scheduled Event"}, context)
    assert reply["recorded"] == ["lost-event"] and reply["seen"] == 1
    assert len(w.store.records()) == 1


def test_each_function_reads_only_its_own_settings():
    """A bad value in a setting a function does not read never stops that function."""
    env = {
        "AUDIT_BUCKET_NAME": "flopsmeter-audit",
        "DIGEST_SIGNING_KEY_ID": "alias/flopsmeter-digest",
        "PRIMARY_POLICY": "made-up",  # classifier + reconciler only
        "RECONCILE_LOOKBACK_HOURS": "soon",  # reconciler only
    }
    assert DigestSettings.from_env(env).DIGEST_SIGNING_KEY_ID == "alias/flopsmeter-digest"
    with pytest.raises(SettingsError, match="PRIMARY_POLICY") as caught:
        ClassifierSettings.from_env(env)
    assert "RECONCILE_LOOKBACK_HOURS" not in str(caught.value)
    fixed = env | {"PRIMARY_POLICY": "aws-30pct-2026"}
    assert ClassifierSettings.from_env(fixed).PRIMARY_POLICY == "aws-30pct-2026"
    with pytest.raises(SettingsError, match="RECONCILE_LOOKBACK_HOURS"):
        ReconcilerSettings.from_env(fixed)
    assert "DEAD_LETTER_QUEUE_URL" not in ReconcilerSettings.model_fields
    assert "DIGEST_SIGNING_KEY_ID" not in ClassifierSettings.model_fields


def test_digest_settings_require_the_signing_key():
    with pytest.raises(SettingsError, match="DIGEST_SIGNING_KEY_ID"):
        DigestSettings.from_env({"AUDIT_BUCKET_NAME": "flopsmeter-audit"})
    with pytest.raises(SettingsError, match="AUDIT_BUCKET_NAME"):
        DigestSettings.from_env({"DIGEST_SIGNING_KEY_ID": "k"})
