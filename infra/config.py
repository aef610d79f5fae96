"""Deployment configuration: ``cdk.json`` context validated into a typed, frozen ``DeployConfig`` at synth.

Every problem is collected and reported at once (``ConfigError``), one line each naming the context key, the bad
value and what is allowed, so a bad ``cdk.json`` or ``-c key=value`` fails synth before anything is built.
Values given on the command line arrive as strings (``-c retention_years=7``); the field types parse them. A
setting the functions read too (retention, policy, CloudTrail wait, energy assumptions ...) has its one
definition in ``flopsmeter.functions.fields``, shared with ``flopsmeter.functions.settings``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from flopsmeter.contract import ORGANIZATION
from flopsmeter.domain.energy import DEFAULT_POWER_UTILISATION, DEFAULT_PUE
from flopsmeter.domain.thresholds import DEFAULT_APPROACHING_FRACTION, DEFAULT_PRIMARY_POLICY
from flopsmeter.functions.fields import (
    DEFAULT_CLOUDTRAIL_MAX_WAIT_SECONDS,
    DEFAULT_RECONCILE_LOOKBACK_HOURS,
    DEFAULT_RETENTION_YEARS,
    REGION,
    AccountList,
    ApproachingFraction,
    CloudTrailMaxWaitSeconds,
    DeploymentMode,
    EnergyPowerUtilisation,
    EnergyPue,
    Flag,
    PrimaryPolicy,
    ReconcileLookbackHours,
    RegionList,
    RetentionYears,
    items_matching,
    matching,
    one_of,
    whole_number,
)
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


def _upper(raw: Any) -> Any:
    return raw.strip().upper() if isinstance(raw, str) else raw


Stage = Annotated[
    str,
    matching(r"^[a-z][a-z0-9-]{0,19}$", "must be a lowercase name (letters, digits, '-'), e.g. " + ", ".join(STAGES)),
]
# Optional strings: empty in cdk.json means not set (None).
Email = Annotated[
    str | None,
    matching(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "must be an e-mail address (or empty for none)", blank_is_none=True),
]
Region = Annotated[
    str | None,
    matching(
        REGION,
        "must be an AWS region name such as eu-west-1 (or empty for a region-agnostic template)",
        blank_is_none=True,
    ),
]
OrganizationId = Annotated[
    str | None,
    matching(
        r"^o-[a-z0-9]{10,32}$", "must be an AWS Organizations id such as o-a1b2c3d4e5 (or empty)", blank_is_none=True
    ),
]
RoleName = Annotated[
    str | None,
    matching(
        r"^([\w+=,.@-]+/)*[\w+=,.@-]{1,64}$",
        "must be an IAM role name, optionally with its path (path/name), or empty for none",
        blank_is_none=True,
    ),
]
LogRetentionDays = Annotated[int, one_of(LOG_RETENTION_DAYS)]
LogLevel = Annotated[str, BeforeValidator(_upper), one_of(LOG_LEVELS)]
StackSetCallAs = Annotated[Literal["DELEGATED_ADMIN", "SELF"], one_of(STACKSET_CALL_AS)]
OrganizationalUnits = Annotated[
    tuple[str, ...],
    items_matching(
        r"^(ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}|r-[a-z0-9]{4,32})$",
        "organizational unit ids (ou-...) or the root id (r-...)",
    ),
]
ReconcileEveryMinutes = Annotated[int, whole_number(5, 24 * 60)]
MaxConcurrency = Annotated[int, whole_number(2, 1000)]
ReservedConcurrency = Annotated[int, whole_number(0, 1000)]
AccessLogRetentionDays = Annotated[int, whole_number(1, 36_500)]
ScanCutoffGb = Annotated[int, whole_number(1, 10_000)]


class ConfigError(ValueError):
    """The deployment configuration is invalid; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid cdk.json context:\n  - " + "\n  - ".join(problems))


class DeployConfig(BaseModel):
    """What one deployment of the stack is made of. Defaults are the production-safe choices."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    stage: Stage = "prod"  # dev|test|prod: prod retains every stateful resource, others may be destroyed
    retention_years: RetentionYears = DEFAULT_RETENTION_YEARS
    primary_policy: PrimaryPolicy = DEFAULT_PRIMARY_POLICY
    approaching_fraction: ApproachingFraction = DEFAULT_APPROACHING_FRACTION
    alert_email: Email = None  # subscribed to the alert topic when set (confirmation e-mail follows)
    reconcile_lookback_hours: ReconcileLookbackHours = DEFAULT_RECONCILE_LOOKBACK_HOURS
    reconcile_every_minutes: ReconcileEveryMinutes = 60  # reconciler schedule
    log_retention_days: LogRetentionDays = 365  # CloudWatch Logs retention of the functions' log groups
    log_level: LogLevel = "INFO"  # POWERTOOLS_LOG_LEVEL
    cloudtrail_max_wait_seconds: CloudTrailMaxWaitSeconds = DEFAULT_CLOUDTRAIL_MAX_WAIT_SECONDS
    # The classifier's event-source MaximumConcurrency: caps CloudTrail LookupEvents calls (2 TPS per account).
    classifier_max_concurrency: MaxConcurrency = 5
    # Reserved concurrency: 0 = none (the default; a reservation fails on accounts whose unreserved pool would fall
    # below Lambda's minimum of 100). When set, at least classifier_max_concurrency.
    classifier_reserved_concurrency: ReservedConcurrency = 0
    region: Region = None  # the target region when known at synth (else CDK_DEFAULT_REGION; else agnostic)
    # Organization mode (docs/organization.md): this stack becomes the compliance account's, with an organization
    # event bus, and a service-managed StackSet deploys the member stack to every account of these OUs.
    deployment_mode: DeploymentMode = "single-account"  # contract.SINGLE_ACCOUNT
    organization_id: OrganizationId = None  # o-...
    member_organizational_units: OrganizationalUnits = ()  # ou-... or r-... (the root: every account)
    member_regions: RegionList = ()  # the regions the member stack is deployed to in each account
    # optional: the member accounts, for Athena's account partitions and the reconciler's rotation (else the
    # reconciler asks Organizations ListAccounts; Athena then sees only the accounts listed here)
    member_accounts: AccountList = ()
    stackset_call_as: StackSetCallAs = "DELEGATED_ADMIN"
    access_log_retention_days: AccessLogRetentionDays = 3653  # S3 server access logs of the audit bucket
    athena_bytes_scanned_cutoff_gb: ScanCutoffGb = 10  # per-query scan limit of the workgroup
    # Provenance: create a minimal single-region trail of write management events, so that EventBridge sees the
    # launch calls (leave false when the account already has a trail; synthesis cannot tell, it is offline).
    create_management_trail: Flag = False
    # Energy estimate assumptions and the provider's establishment (issue 16; docs/obligations.md)
    established_outside_eu: Flag = False  # Art. 54: an authorised representative in the EU is then required
    energy_pue: EnergyPue = DEFAULT_PUE  # data-centre power usage effectiveness applied to the accelerators' energy
    energy_power_utilisation: EnergyPowerUtilisation = DEFAULT_POWER_UTILISATION  # board power share (1.0: upper)
    # Organization mode: create an organization trail (all accounts, all regions, write management events) so that
    # the member accounts' buses see the launch calls they forward (the compliance account must be the
    # organization's management account or CloudTrail's delegated administrator). False: one must exist already.
    create_organization_trail: Flag = False
    # Who else may touch the evidence (IAM role names, optionally with a path, in this account; empty: nobody):
    # a break-glass role that may write objects under any prefix of the audit bucket (locked, conditional, like
    # every write), and the one role that may place or lift an Object Lock legal hold.
    break_glass_role_name: RoleName = None
    legal_hold_role_name: RoleName = None

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
        return cls.from_mapping({n: node.try_get_context(n) for n in cls.model_fields})

    @classmethod
    def from_mapping(cls, context: Mapping[str, Any]) -> DeployConfig:
        """Validate a plain mapping (``None`` means "use the default"; keys that are no field, such as CDK's feature
        flags, are not looked at); raise ``ConfigError`` listing all problems."""
        values = {name: context[name] for name in cls.model_fields if context.get(name) is not None}
        try:
            config = cls.model_validate(values)
        except ValidationError as err:
            raise ConfigError([_problem(e, values) for e in err.errors(include_url=False)]) from None
        problems = config.cross_field_problems()
        if problems:
            raise ConfigError(problems)
        return config

    def cross_field_problems(self) -> list[str]:
        """What no single value shows: organization keys without organization mode (or missing in it), a
        reservation below the event source's concurrency, a lookback shorter than the schedule."""
        problems = self._organization_problems()
        if self.create_organization_trail and self.create_management_trail:
            problems.append(
                "create_management_trail and create_organization_trail are both true: the organization trail already "
                "logs this account (set create_management_trail=false)"
            )
        if 0 < self.classifier_reserved_concurrency < self.classifier_max_concurrency:
            problems.append(
                f"classifier_reserved_concurrency={self.classifier_reserved_concurrency} is below "
                f"classifier_max_concurrency={self.classifier_max_concurrency}: the queue's pollers would be "
                "throttled (0 means no reservation)"
            )
        if self.reconcile_lookback_hours * 60 < self.reconcile_every_minutes:
            problems.append(
                f"reconcile_lookback_hours={self.reconcile_lookback_hours} is shorter than reconcile_every_minutes="
                f"{self.reconcile_every_minutes}: jobs ending between two runs would never be reconciled"
            )
        return problems

    def _organization_problems(self) -> list[str]:
        org_keys = {
            "organization_id": self.organization_id,
            "member_organizational_units": self.member_organizational_units,
            "member_regions": self.member_regions,
        }
        if self.is_organization:
            return [
                f"{key} is required when deployment_mode={ORGANIZATION}" for key, value in org_keys.items() if not value
            ]
        return [
            f"{key} is set but deployment_mode={self.deployment_mode} (set deployment_mode={ORGANIZATION} to use it)"
            for key, value in (
                org_keys
                | {"member_accounts": self.member_accounts, "create_organization_trail": self.create_organization_trail}
            ).items()
            if value
        ]


def _problem(error: Any, values: Mapping[str, Any]) -> str:
    """One line: the key, the value as given, what is allowed."""
    name = str(error["loc"][0]) if error["loc"] else "context"
    if name not in values:
        return f"{name}: {error['msg']}"
    return f"{name}={values[name]!r}: {error['msg']}"
