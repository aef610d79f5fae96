"""DeployConfig: cdk.json context validated at synth; bad configuration fails with a clear message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from flopsmeter.domain.thresholds import POLICIES
from flopsmeter.functions.settings import ReconcilerSettings, SettingsError
from infra.assets import REPO_ROOT
from infra.config import ConfigError, DeployConfig, cdk_json_context

pytestmark = pytest.mark.infra


def test_defaults_are_the_production_safe_choices() -> None:
    cfg = DeployConfig.from_mapping({})
    assert (cfg.stage, cfg.retention_years, cfg.primary_policy, cfg.alert_email) == ("prod", 10, "aws-30pct-2026", None)
    assert cfg.is_production and cfg.retention_days == 3650


def test_committed_cdk_json_is_valid_and_has_no_unknown_keys() -> None:
    context = cdk_json_context()
    DeployConfig.from_mapping(context)
    known = set(DeployConfig.model_fields)
    ours = {k for k in context if not k.startswith("@aws-cdk") and not k.startswith("aws:")}
    assert ours <= known, f"cdk.json keys DeployConfig does not read: {sorted(ours - known)}"


def test_command_line_strings_are_parsed() -> None:
    cfg = DeployConfig.from_mapping(
        {
            "retention_years": "7",
            "approaching_fraction": "0.9",
            "log_level": "debug",
            "alert_email": "  a@b.example ",
            "stage": "dev",
        }
    )
    assert (cfg.retention_years, cfg.approaching_fraction, cfg.log_level) == (7, 0.9, "DEBUG")
    assert cfg.alert_email == "a@b.example" and not cfg.is_production
    energy = DeployConfig.from_mapping(
        {"established_outside_eu": "true", "energy_pue": "1.4", "energy_power_utilisation": "0.7"}
    )
    assert (energy.established_outside_eu, energy.energy_pue, energy.energy_power_utilisation) == (True, 1.4, 0.7)


def test_empty_alert_email_means_no_subscription() -> None:
    assert DeployConfig.from_mapping({"alert_email": ""}).alert_email is None


@pytest.mark.parametrize(
    ("key", "value", "hint"),
    [
        ("retention_years", 0, "from 1 to 100"),
        ("retention_years", "ten", "whole number"),
        ("retention_years", 7.5, "whole number"),
        ("retention_years", True, "whole number"),
        ("primary_policy", "eu-2099", "known policies: " + ", ".join(sorted(POLICIES))),
        ("approaching_fraction", 1.0, "greater than 0 and less than 1"),
        ("approaching_fraction", "nan", "greater than 0 and less than 1"),
        ("approaching_fraction", 0, "greater than 0 and less than 1"),
        ("alert_email", "not-an-address", "e-mail address"),
        ("log_retention_days", 10, "one of"),
        ("log_level", "LOUD", "one of DEBUG"),
        ("stage", "Prod!", "lowercase name"),
        ("region", "Mars-1", "AWS region name"),
        ("reconcile_lookback_hours", 0, "whole number"),
        ("cloudtrail_max_wait_seconds", 999999, "whole number"),
        ("classifier_max_concurrency", 1, "from 2 to 1000"),
        ("classifier_reserved_concurrency", -1, "from 0 to 1000"),
        ("energy_pue", 0.9, "from 1 to 5"),
        ("energy_pue", "nan", "from 1 to 5"),
        ("energy_power_utilisation", 0, "greater than 0 and at most 1"),
        ("energy_power_utilisation", True, "greater than 0 and at most 1"),
        ("established_outside_eu", "maybe", "true or false"),
    ],
)
def test_bad_value_fails_naming_the_key_the_value_and_what_is_allowed(key: str, value: object, hint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        DeployConfig.from_mapping({key: value})
    message = str(caught.value)
    assert f"{key}={value!r}" in message and hint in message


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        DeployConfig.from_mapping({"retention_years": -3, "primary_policy": "nope", "log_level": "x"})
    assert len(caught.value.problems) == 3


def test_lookback_shorter_than_the_schedule_is_rejected() -> None:
    with pytest.raises(ConfigError, match="would never be reconciled"):
        DeployConfig.from_mapping({"reconcile_lookback_hours": 1, "reconcile_every_minutes": 120})


def test_no_concurrency_is_reserved_by_default_and_a_reservation_must_cover_the_event_source() -> None:
    cfg = DeployConfig.from_mapping({})
    assert (cfg.classifier_reserved_concurrency, cfg.classifier_max_concurrency) == (0, 5)
    assert DeployConfig.from_mapping({"classifier_reserved_concurrency": 5}).classifier_reserved_concurrency == 5
    with pytest.raises(ConfigError, match="pollers would be throttled"):
        DeployConfig.from_mapping({"classifier_reserved_concurrency": 4, "classifier_max_concurrency": 5})


def test_region_is_optional() -> None:
    assert DeployConfig.from_mapping({"region": ""}).region is None
    assert DeployConfig.from_mapping({"region": "eu-central-2"}).region == "eu-central-2"


def test_config_is_frozen() -> None:
    cfg = DeployConfig.from_mapping({})
    with pytest.raises(ValidationError, match="frozen"):
        cfg.retention_years = 1  # type: ignore[misc]


def test_synth_with_bad_context_stops_with_a_clear_message(tmp_path: Path) -> None:
    # The CDK CLI hands `-c key=value` to app.py through CDK_CONTEXT_JSON; it overrides cdk.json.
    # (A subprocess: the in-process jsii kernel keeps the environment it started with.)
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps({"retention_years": 0, "primary_policy": "made-up"}),
        "CDK_OUTDIR": str(tmp_path / "cdk.out"),
    }
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 2
    assert "synth stopped: invalid cdk.json context:" in result.stderr
    assert "retention_years=0" in result.stderr and "primary_policy='made-up'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list((tmp_path / "cdk.out").glob("*.template.json"))


def test_single_account_is_the_default_and_takes_no_organization_keys() -> None:
    cfg = DeployConfig.from_mapping(cdk_json_context())
    assert (cfg.deployment_mode, cfg.is_organization, cfg.organization_id) == ("single-account", False, None)
    with pytest.raises(ConfigError, match="organization_id is set but deployment_mode=single-account"):
        DeployConfig.from_mapping({"organization_id": "o-a1b2c3d4e5"})


def test_organization_mode_needs_the_organization_its_units_and_regions() -> None:
    with pytest.raises(ConfigError) as caught:
        DeployConfig.from_mapping({"deployment_mode": "organization"})
    assert len(caught.value.problems) == 3 and all("is required" in p for p in caught.value.problems)
    cfg = DeployConfig.from_mapping(
        {
            "deployment_mode": "organization",
            "organization_id": "o-a1b2c3d4e5",
            "member_organizational_units": "ou-ab12-cdefgh34, r-ab12",
            "member_regions": ["eu-west-1"],
            "stackset_call_as": "SELF",
        }
    )
    assert cfg.is_organization and cfg.member_organizational_units == ("ou-ab12-cdefgh34", "r-ab12")
    assert cfg.member_regions == ("eu-west-1",) and cfg.stackset_call_as == "SELF"


@pytest.mark.parametrize(
    ("key", "value", "hint"),
    [
        ("deployment_mode", "multi", "one of single-account, organization"),
        ("organization_id", "org-1", "AWS Organizations id"),
        ("member_organizational_units", ["ou-1"], "organizational unit ids"),
        ("member_regions", "eu-west-1,atlantis", "not: atlantis"),
        ("stackset_call_as", "ADMIN", "one of DELEGATED_ADMIN, SELF"),
    ],
)
def test_bad_organization_values_are_named(key: str, value: object, hint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        DeployConfig.from_mapping({key: value})
    assert hint in str(caught.value)


SHARED = [  # (cdk.json key, the functions' variable, a value both must refuse)
    ("retention_years", "RETENTION_YEARS", "101"),
    ("primary_policy", "PRIMARY_POLICY", "made-up"),
    ("approaching_fraction", "APPROACHING_FRACTION", "1.0"),
    ("cloudtrail_max_wait_seconds", "CLOUDTRAIL_MAX_WAIT_SECONDS", "99999"),
    ("reconcile_lookback_hours", "RECONCILE_LOOKBACK_HOURS", "500"),
    ("established_outside_eu", "ESTABLISHED_OUTSIDE_EU", "maybe"),
    ("energy_pue", "ENERGY_PUE", "0.5"),
    ("energy_power_utilisation", "ENERGY_POWER_UTILISATION", "0"),
    ("deployment_mode", "DEPLOYMENT_MODE", "multi"),
    ("member_regions", "MEMBER_REGIONS", "eu-west-1,atlantis"),
    ("member_accounts", "MEMBER_ACCOUNTS", "12345"),
]


@pytest.mark.parametrize(("key", "variable", "bad"), SHARED)
def test_a_setting_the_functions_read_too_has_one_definition(key: str, variable: str, bad: str) -> None:
    """The stack cannot synthesize a value the function would refuse at cold start: same type, default, message."""
    ours, theirs = DeployConfig.model_fields[key], ReconcilerSettings.model_fields[variable]
    assert ours.metadata == theirs.metadata and ours.default == theirs.default
    with pytest.raises(ConfigError) as config_error:
        DeployConfig.from_mapping({key: bad})
    with pytest.raises(SettingsError) as settings_error:
        ReconcilerSettings.from_env({"AUDIT_BUCKET_NAME": "b-ok", variable: bad})
    (problem,) = config_error.value.problems
    assert problem.split(": ", 1)[1] in str(settings_error.value)


def test_the_defaults_the_stack_deploys_are_the_functions_defaults() -> None:
    deployed = DeployConfig.from_mapping({})
    unset = ReconcilerSettings.from_env({"AUDIT_BUCKET_NAME": "b-ok"})
    for key, variable, _ in SHARED:
        assert getattr(deployed, key) == getattr(unset, variable), key
