"""Deployment configuration: ``cdk.json`` context validated into a typed, frozen ``DeployConfig`` at synth.

Every problem is collected and reported at once (``ConfigError``), naming the context key, the bad value
and what is allowed, so a bad ``cdk.json`` or ``-c key=value`` fails synth before anything is built.
Values given on the command line arrive as strings (``-c retention_years=7``); they are parsed here.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from flopsmeter.contract import DEPLOYMENT_MODES, ORGANIZATION, SINGLE_ACCOUNT
from flopsmeter.domain.energy import DEFAULT_POWER_UTILISATION, DEFAULT_PUE
from flopsmeter.domain.thresholds import DEFAULT_APPROACHING_FRACTION, DEFAULT_PRIMARY_POLICY, POLICIES
from infra.assets import REPO_ROOT

CDK_JSON = REPO_ROOT / "cdk.json"


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """The ``context`` object of ``cdk.json`` (the CDK CLI passes it itself; ``python app.py`` does not)."""
    return dict(json.loads(path.read_text()).get("context", {}))


def feature_flags(context: Mapping[str, Any]) -> dict[str, Any]:
    """The CDK feature flags among ``context`` (``@aws-cdk...`` keys)."""
    return {k: v for k, v in context.items() if k.startswith("@aws-cdk")}


# CloudWatch Logs accepts only these retention periods (days; 0 would mean "never expire"), each with the name of
# its aws_logs.RetentionDays member (jsii enums carry names, not the day counts).
LOG_RETENTION = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1096: "THREE_YEARS",
    1827: "FIVE_YEARS",
    2192: "SIX_YEARS",
    2557: "SEVEN_YEARS",
    2922: "EIGHT_YEARS",
    3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}
LOG_RETENTION_DAYS = tuple(LOG_RETENTION)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
STACKSET_CALL_AS = ("DELEGATED_ADMIN", "SELF")  # the compliance account is a delegated administrator, or management
STAGES = ("dev", "test", "prod")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_ORGANIZATION_ID = re.compile(r"^o-[a-z0-9]{10,32}$")
_ACCOUNT = re.compile(r"^[0-9]{12}$")
_OU_OR_ROOT = re.compile(r"^(ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}|r-[a-z0-9]{4,32})$")


class ConfigError(ValueError):
    """The deployment configuration is invalid; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid cdk.json context:\n  - " + "\n  - ".join(problems))


@dataclass(frozen=True)
class DeployConfig:
    """What one deployment of the stack is made of. Defaults are the production-safe choices."""

    stage: str = "prod"  # dev|test|prod: prod retains every stateful resource, others may be destroyed
    retention_years: int = 10  # Object Lock COMPLIANCE default retention (AI Act Art. 54(3)(b): 10 years)
    primary_policy: str = DEFAULT_PRIMARY_POLICY  # a policy id of flopsmeter.domain.thresholds.POLICIES
    approaching_fraction: float = DEFAULT_APPROACHING_FRACTION  # "approaching" from this share of a threshold
    alert_email: str | None = None  # subscribed to the alert topic when set (confirmation e-mail follows)
    reconcile_lookback_hours: int = 24  # how far back the reconciler lists ended training jobs
    reconcile_every_minutes: int = 60  # reconciler schedule
    log_retention_days: int = 365  # CloudWatch Logs retention of the functions' log groups
    log_level: str = "INFO"  # POWERTOOLS_LOG_LEVEL
    cloudtrail_max_wait_seconds: int = 1800  # how long the classifier waits for CloudTrail before "not_found"
    # The classifier's event-source MaximumConcurrency: caps CloudTrail LookupEvents calls (2 TPS per account).
    classifier_max_concurrency: int = 5
    # Reserved concurrency: 0 = none (the default; a reservation fails on accounts whose unreserved pool would fall
    # below Lambda's minimum of 100). When set, at least classifier_max_concurrency.
    classifier_reserved_concurrency: int = 0
    region: str | None = None  # the target region when known at synth (else CDK_DEFAULT_REGION; else agnostic)
    # Organization mode (docs/organization.md): this stack becomes the compliance account's, with an organization
    # event bus, and a service-managed StackSet deploys the member stack to every account of these OUs.
    deployment_mode: str = SINGLE_ACCOUNT
    organization_id: str | None = None  # o-...
    member_organizational_units: tuple[str, ...] = ()  # ou-... or r-... (the root: every account)
    member_regions: tuple[str, ...] = ()  # the regions the member stack is deployed to in each account
    # optional: the member accounts, for Athena's account partitions and the reconciler's rotation (else the
    # reconciler asks Organizations ListAccounts; Athena then sees only the accounts listed here)
    member_accounts: tuple[str, ...] = ()
    stackset_call_as: str = "DELEGATED_ADMIN"
    access_log_retention_days: int = 3653  # S3 server access logs of the audit bucket (10 years)
    athena_bytes_scanned_cutoff_gb: int = 10  # per-query scan limit of the workgroup
    # Provenance: create a minimal single-region trail of write management events, so that EventBridge sees the
    # launch calls (leave false when the account already has a trail; synthesis cannot tell, it is offline).
    create_management_trail: bool = False
    # Energy estimate assumptions and the provider's establishment (issue 16; docs/obligations.md)
    established_outside_eu: bool = False  # Art. 54: an authorised representative in the EU is then required
    energy_pue: float = DEFAULT_PUE  # data-centre power usage effectiveness applied to the accelerators' energy
    energy_power_utilisation: float = DEFAULT_POWER_UTILISATION  # share of board power drawn (1.0: upper estimate)

    @property
    def is_production(self) -> bool:
        return self.stage == "prod"

    @property
    def is_organization(self) -> bool:
        return self.deployment_mode == ORGANIZATION

    @property
    def retention_days(self) -> int:
        """The shortest retention, in days, a record may be written with (years x 365)."""
        return self.retention_years * 365

    @classmethod
    def from_context(cls, node: Any) -> DeployConfig:
        """Read every field from a construct's context (``app.node``), falling back to the defaults."""
        names = [f.name for f in fields(cls)]
        return cls.from_mapping({n: node.try_get_context(n) for n in names})

    @classmethod
    def from_mapping(cls, context: Mapping[str, Any]) -> DeployConfig:
        """Validate a plain mapping (``None`` means "use the default"); raise ``ConfigError`` listing all problems."""
        problems: list[str] = []
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = context.get(f.name)
            if raw is None:
                continue
            check = _CHECKS[f.name]
            try:
                values[f.name] = check(raw)
            except ValueError as err:
                problems.append(f"{f.name}={raw!r}: {err}")
        if not problems:
            problems.extend(_cross_field_problems(cls(**values)))
        if problems:
            raise ConfigError(problems)
        return cls(**values)


def _cross_field_problems(cfg: DeployConfig) -> list[str]:
    problems = _organization_problems(cfg)
    if 0 < cfg.classifier_reserved_concurrency < cfg.classifier_max_concurrency:
        problems.append(
            f"classifier_reserved_concurrency={cfg.classifier_reserved_concurrency} is below "
            f"classifier_max_concurrency={cfg.classifier_max_concurrency}: the queue's pollers would be throttled "
            "(0 means no reservation)"
        )
    if cfg.reconcile_lookback_hours * 60 < cfg.reconcile_every_minutes:
        problems.append(
            f"reconcile_lookback_hours={cfg.reconcile_lookback_hours} is shorter than reconcile_every_minutes="
            f"{cfg.reconcile_every_minutes}: jobs ending between two runs would never be reconciled"
        )
    return problems


def _organization_problems(cfg: DeployConfig) -> list[str]:
    org_keys = {
        "organization_id": cfg.organization_id,
        "member_organizational_units": cfg.member_organizational_units,
        "member_regions": cfg.member_regions,
    }
    if cfg.is_organization:
        return [
            f"{key} is required when deployment_mode={ORGANIZATION}" for key, value in org_keys.items() if not value
        ]
    return [
        f"{key} is set but deployment_mode={cfg.deployment_mode} (set deployment_mode={ORGANIZATION} to use it)"
        for key, value in (org_keys | {"member_accounts": cfg.member_accounts}).items()
        if value
    ]


def _list_of(pattern: re.Pattern[str], what: str) -> Callable[[Any], tuple[str, ...]]:
    """A JSON list in cdk.json, or a comma-separated string from ``-c key=a,b``."""

    def parse(raw: Any) -> tuple[str, ...]:
        items = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(items, list | tuple):
            raise ValueError(f"must be a list of {what}")
        values = tuple(str(item).strip() for item in items if str(item).strip())
        bad = [v for v in values if not pattern.match(v)]
        if bad:
            raise ValueError(f"must be a list of {what}; not: " + ", ".join(bad))
        return values

    return parse


def _organization_id(raw: Any) -> str | None:
    value = str(raw).strip()
    if value == "":
        return None
    if not _ORGANIZATION_ID.match(value):
        raise ValueError("must be an AWS Organizations id such as o-a1b2c3d4e5 (or empty)")
    return value


def _region(raw: Any) -> str | None:
    value = str(raw).strip()
    if value == "":
        return None
    if not _REGION.match(value):
        raise ValueError("must be an AWS region name such as eu-west-1 (or empty for a region-agnostic template)")
    return value


def _int_in(low: int, high: int) -> Callable[[Any], int]:
    def parse(raw: Any) -> int:
        if isinstance(raw, bool):
            raise ValueError(f"must be a whole number from {low} to {high}")
        try:
            value = int(str(raw).strip()) if not isinstance(raw, int) else raw
        except ValueError:
            raise ValueError(f"must be a whole number from {low} to {high}") from None
        if isinstance(raw, float) or not low <= value <= high:
            raise ValueError(f"must be a whole number from {low} to {high}")
        return value

    return parse


def _one_of(choices: tuple[Any, ...], parse: Callable[[Any], Any] = str) -> Callable[[Any], Any]:
    def check(raw: Any) -> Any:
        try:
            value = parse(raw)
        except ValueError:
            value = None
        if value not in choices:
            raise ValueError("must be one of " + ", ".join(str(c) for c in choices))
        return value

    return check


def _flag(raw: Any) -> bool:
    """A boolean, or its text as ``cdk synth -c key=value`` passes it."""
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"true", "false"}:
        return text == "true"
    raise ValueError("must be true or false")


def _stage(raw: Any) -> str:
    value = str(raw).strip()
    if not _STAGE_NAME.match(value):
        raise ValueError("must be a lowercase name (letters, digits, '-'), e.g. " + ", ".join(STAGES))
    return value


def _policy(raw: Any) -> str:
    value = str(raw).strip()
    if value not in POLICIES:
        raise ValueError("unknown policy; known policies: " + ", ".join(sorted(POLICIES)))
    return value


def _fraction(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError("must be a number greater than 0 and less than 1")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError("must be a number greater than 0 and less than 1") from None
    if not 0.0 < value < 1.0:  # also rejects NaN
        raise ValueError("must be a number greater than 0 and less than 1")
    return value


def _number_in(low: float, high: float, *, above_low: bool = False) -> Callable[[Any], float]:
    """A number in [low, high] (or (low, high] with ``above_low``); NaN and booleans are refused."""
    lower, upper = ("greater than", "and at most") if above_low else ("from", "to")
    what = f"must be a number {lower} {low:g} {upper} {high:g}"

    def parse(raw: Any) -> float:
        try:
            value = float(raw) if not isinstance(raw, bool) else math.nan
        except (TypeError, ValueError):
            value = math.nan
        if not (low < value <= high if above_low else low <= value <= high):  # NaN fails both
            raise ValueError(what)
        return value

    return parse


def _email(raw: Any) -> str | None:
    value = str(raw).strip()
    if value == "":
        return None  # empty string in cdk.json means "no subscription"
    if not _EMAIL.match(value):
        raise ValueError("must be an e-mail address (or empty for none)")
    return value


def _log_level(raw: Any) -> str:
    value = str(raw).strip().upper()
    if value not in LOG_LEVELS:
        raise ValueError("must be one of " + ", ".join(LOG_LEVELS))
    return value


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "stage": _stage,
    "retention_years": _int_in(1, 100),
    "primary_policy": _policy,
    "approaching_fraction": _fraction,
    "alert_email": _email,
    "reconcile_lookback_hours": _int_in(1, 24 * 30),
    "reconcile_every_minutes": _int_in(5, 24 * 60),
    "log_retention_days": _one_of(LOG_RETENTION_DAYS, int),
    "log_level": _log_level,
    "cloudtrail_max_wait_seconds": _int_in(0, 6 * 3600),
    "classifier_max_concurrency": _int_in(2, 1000),
    "classifier_reserved_concurrency": _int_in(0, 1000),
    "region": _region,
    "access_log_retention_days": _int_in(1, 36_500),
    "athena_bytes_scanned_cutoff_gb": _int_in(1, 10_000),
    "deployment_mode": _one_of(DEPLOYMENT_MODES),
    "organization_id": _organization_id,
    "member_organizational_units": _list_of(_OU_OR_ROOT, "organizational unit ids (ou-...) or the root id (r-...)"),
    "member_regions": _list_of(_REGION, "AWS region names"),
    "member_accounts": _list_of(_ACCOUNT, "12-digit AWS account ids"),
    "stackset_call_as": _one_of(STACKSET_CALL_AS),
    "create_management_trail": _flag,
    "established_outside_eu": _flag,
    "energy_pue": _number_in(1.0, 5.0),
    "energy_power_utilisation": _number_in(0.0, 1.0, above_low=True),
}
