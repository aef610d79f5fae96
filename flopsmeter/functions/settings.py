"""Per-function settings, validated once per container from the environment the CDK stack sets.

One pydantic model per Lambda, composed from a shared base, so each function validates exactly what it reads:
``ClassifierSettings``, ``ReconcilerSettings``, ``DigestSettings``, ``CompactorSettings``. Logic receives values;
nothing else reads ``os.environ``. A variable that is set but blank counts as unset (the field's default applies).
A setting the stack's configuration holds too (``infra/config.py``) has its type and default in
``flopsmeter.functions.fields``: the stack cannot deploy a value a function would refuse.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from flopsmeter.contract import ORGANIZATION
from flopsmeter.domain.energy import DEFAULT_POWER_UTILISATION, DEFAULT_PUE, EnergyAssumptions
from flopsmeter.domain.thresholds import DEFAULT_APPROACHING_FRACTION, DEFAULT_PRIMARY_POLICY
from flopsmeter.errors import FlopsMeterError
from flopsmeter.functions.fields import (
    DEFAULT_CLOUDTRAIL_MAX_WAIT_SECONDS,
    DEFAULT_RECONCILE_LOOKBACK_HOURS,
    DEFAULT_RETENTION_YEARS,
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
)
from flopsmeter.service.dependencies import ServiceConfig

SNS_TOPIC_ARN = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$"
# A standard (not FIFO) queue's URL: https://sqs.<region>.amazonaws.com/<account>/<name>, or an emulator's http URL.
IAM_ROLE_NAME = r"^[\w+=,.@-]{1,64}$"
SSM_PARAMETER_NAME = r"^/[A-Za-z0-9_.\-/]{1,1010}$"
GLUE_NAME = r"^[a-z0-9_]{1,255}$"
ATHENA_WORKGROUP = r"^[A-Za-z0-9._-]{1,128}$"
SQS_QUEUE_URL = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[0-9]{12}/[A-Za-z0-9_-]{1,80}$"


class SettingsError(FlopsMeterError):
    """The function's environment is missing or has an invalid setting (fix the stack, not the message)."""


class FunctionSettings(BaseModel):
    """What every function reads: the audit bucket and its retention."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    AUDIT_BUCKET_NAME: str = Field(min_length=3, max_length=63)
    RETENTION_YEARS: RetentionYears = DEFAULT_RETENTION_YEARS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """This model's fields from ``environ`` (default ``os.environ``); other variables are not looked at."""
        env = os.environ if environ is None else environ
        values = {name: env[name] for name in cls.model_fields if env.get(name, "").strip()}
        try:
            return cls.model_validate(values)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in err.errors(include_url=False, include_input=False)
            )
            raise SettingsError(f"invalid {cls.__name__}: {problems}") from None


class ClassificationSettings(FunctionSettings):
    """What classifying a job needs (the classifier and the reconciler)."""

    PRIMARY_POLICY: PrimaryPolicy = DEFAULT_PRIMARY_POLICY
    APPROACHING_FRACTION: ApproachingFraction = DEFAULT_APPROACHING_FRACTION
    ALERT_TOPIC_ARN: str | None = Field(default=None, pattern=SNS_TOPIC_ARN)
    EVENT_BUS_NAME: str = Field(default="default", min_length=1, max_length=1600)
    CLOUDTRAIL_MAX_WAIT_SECONDS: CloudTrailMaxWaitSeconds = DEFAULT_CLOUDTRAIL_MAX_WAIT_SECONDS
    # issue 16: the provider's establishment (Art. 54) and the energy estimate's assumptions
    ESTABLISHED_OUTSIDE_EU: Flag = False
    ENERGY_PUE: EnergyPue = DEFAULT_PUE
    ENERGY_POWER_UTILISATION: EnergyPowerUtilisation = DEFAULT_POWER_UTILISATION
    # organization mode (docs/organization.md): a job in another account is read through its reader role
    DEPLOYMENT_MODE: DeploymentMode = "single-account"  # contract.SINGLE_ACCOUNT
    MEMBER_ROLE_NAME: str | None = Field(default=None, pattern=IAM_ROLE_NAME)
    # organization mode: the regions the member stack is deployed to (the classifier reads a job in its event's
    # region when it is one of them or the function's own; the reconciler visits each); unset: the own region only
    MEMBER_REGIONS: RegionList = ()

    @model_validator(mode="after")
    def _organization_needs_role(self) -> Self:
        if self.DEPLOYMENT_MODE == ORGANIZATION and not self.MEMBER_ROLE_NAME:
            raise ValueError(f"MEMBER_ROLE_NAME is required when DEPLOYMENT_MODE={ORGANIZATION}")
        return self

    @property
    def is_organization(self) -> bool:
        return self.DEPLOYMENT_MODE == ORGANIZATION

    @property
    def member_regions(self) -> tuple[str, ...]:
        """The member regions in organization mode; none in single-account mode (its own region only)."""
        return self.MEMBER_REGIONS if self.is_organization else ()

    def service_config(self) -> ServiceConfig:
        return ServiceConfig(
            primary_policy=self.PRIMARY_POLICY,
            approaching_fraction=self.APPROACHING_FRACTION,
            cloudtrail_max_wait_seconds=self.CLOUDTRAIL_MAX_WAIT_SECONDS,
            parent_max_wait_seconds=self.CLOUDTRAIL_MAX_WAIT_SECONDS,
            alerts_enabled=self.ALERT_TOPIC_ARN is not None,
            established_outside_eu=self.ESTABLISHED_OUTSIDE_EU,
            energy=EnergyAssumptions(pue=self.ENERGY_PUE, power_utilisation=self.ENERGY_POWER_UTILISATION),
        )


class ClassifierSettings(ClassificationSettings):
    DEAD_LETTER_QUEUE_URL: str | None = Field(default=None, pattern=SQS_QUEUE_URL)  # unset: redrive policy only
    # the queue's maxReceiveCount: on that last delivery a member role that still cannot be assumed is dead-lettered
    # by the classifier itself, with the reason (unset: the redrive policy moves it, without attributes)
    MAX_RECEIVE_COUNT: int | None = Field(default=None, ge=1, le=1000)


class ReconcilerSettings(ClassificationSettings):
    RECONCILE_LOOKBACK_HOURS: ReconcileLookbackHours = DEFAULT_RECONCILE_LOOKBACK_HOURS
    # organization mode: which accounts and regions, and how much of each per run (flopsmeter.service.rotation)
    MEMBER_ACCOUNTS: AccountList = ()  # unset: Organizations ListAccounts
    RECONCILE_JOBS_PER_ACCOUNT: int = Field(default=500, ge=1, le=10_000)  # ListTrainingJobs pages of 100 jobs
    RECONCILE_ACCOUNTS_PER_RUN: int = Field(default=50, ge=1, le=10_000)
    RECONCILE_CURSOR_PARAMETER: str | None = Field(default=None, pattern=SSM_PARAMETER_NAME)

    @property
    def member_accounts(self) -> tuple[str, ...]:
        return self.MEMBER_ACCOUNTS


class HyperPodSettings(ClassificationSettings):
    """The HyperPod function (``flopsmeter.functions.hyperpod``): reports off its queue, and the daily cluster pass
    over this account and (organization mode) the member accounts and regions."""

    DEAD_LETTER_QUEUE_URL: str | None = Field(default=None, pattern=SQS_QUEUE_URL)  # the reports queue's DLQ
    MEMBER_ACCOUNTS: AccountList = ()  # organization mode, unset: Organizations ListAccounts
    MEMBER_REGIONS: RegionList = ()  # unset: the function's own region


class DigestSettings(FunctionSettings):
    DIGEST_SIGNING_KEY_ID: str = Field(min_length=1, max_length=2048)


class CompactorSettings(FunctionSettings):
    """The compaction function (``flopsmeter.functions.compaction``): Athena's workgroup and tables, the staging
    bucket (the Athena results bucket) and the window of days it re-examines."""

    ATHENA_WORKGROUP: str = Field(pattern=ATHENA_WORKGROUP)
    GLUE_DATABASE: str = Field(pattern=GLUE_NAME)
    RECORDS_TABLE: str = Field(default="records", pattern=GLUE_NAME)
    COMPACTED_TABLE: str = Field(default="records_compacted", pattern=GLUE_NAME)
    STAGING_BUCKET_NAME: str = Field(min_length=3, max_length=63)
    COMPACTION_SETTLE_DAYS: int = Field(default=2, ge=0, le=30)
    COMPACTION_LOOKBACK_DAYS: int = Field(default=7, ge=1, le=366)
