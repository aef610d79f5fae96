"""Issue 14 (runtime): the organization reconciler's round-robin over member accounts (flopsmeter.service.rotation):
bounded accounts per run and jobs per account, resuming where the last run stopped, an unreachable account
skipped with its reason."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, get_args

import pytest
from moto import mock_aws

from flopsmeter import contract
from flopsmeter.aws.cursor import MAX_RETRY, RotationCursor
from flopsmeter.errors import MemberRoleUnavailable, PermanentError, TransientError
from flopsmeter.functions.settings import ClassificationSettings, ReconcilerSettings, SettingsError
from flopsmeter.ports import RotationState
from flopsmeter.service.dependencies import Dependencies
from flopsmeter.service.rotation import RotationPlan, reconcile_accounts, this_run
from tests.support.fakes import World

ACCOUNTS = ("111111111111", "222222222222", "333333333333", "444444444444", "555555555555")


class CountingJobs:
    """A member's job source: ``listed`` counts the summaries actually pulled from ListTrainingJobs."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.listed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def recent_terminal_jobs(self, since: datetime) -> Iterator[Mapping[str, Any]]:
        for summary in self.inner.recent_terminal_jobs(since):
            self.listed += 1
            yield summary


@pytest.fixture
def world() -> World:
    return World()


def members(world: World, refuse: set[str] = frozenset()) -> tuple[Any, list[tuple[str, str | None]]]:  # type: ignore[assignment]
    visits: list[tuple[str, str | None]] = []

    def deps_for(account: str, region: str | None) -> Dependencies:
        visits.append((account, region))
        if account in refuse:
            raise MemberRoleUnavailable(
                f"cannot assume arn:aws:iam::{account}:role/R (AccessDenied)",
                account=account,
                role_arn="r",
                code="AccessDenied",
            )
        return world.deps

    return deps_for, visits


def test_each_run_takes_the_next_accounts_round_the_list() -> None:
    assert this_run(ACCOUNTS, 0, 2) == (list(ACCOUNTS[:2]), 2)
    assert this_run(ACCOUNTS, 4, 2) == ([ACCOUNTS[4], ACCOUNTS[0]], 1)
    assert this_run(ACCOUNTS, 12, 2) == ([ACCOUNTS[2], ACCOUNTS[3]], 4)  # a cursor from a longer list wraps
    assert this_run(ACCOUNTS, 3, 50) == (list(ACCOUNTS[3:] + ACCOUNTS[:3]), 3)  # all of them, once
    assert this_run((), 3, 2) == ([], 0)


def test_runs_resume_where_the_last_one_stopped_and_cover_every_account(world: World) -> None:
    deps_for, visits = members(world)
    cursor = RotationCursor()
    plan = RotationPlan(ACCOUNTS, accounts_per_run=2)
    for _ in range(3):
        reconcile_accounts(deps_for, plan, cursor, world.config, lookback_hours=24, log_deps=world.deps)
    assert [a for a, _ in visits] == [*ACCOUNTS, ACCOUNTS[0]]
    assert cursor.load() == RotationState(1)


def test_every_member_region_of_each_account_is_visited(world: World) -> None:
    deps_for, visits = members(world)
    plan = RotationPlan(ACCOUNTS[:2], regions=("eu-west-1", "eu-central-1"))
    reconcile_accounts(deps_for, plan, RotationCursor(), world.config, lookback_hours=24, log_deps=world.deps)
    assert visits == [(a, r) for a in ACCOUNTS[:2] for r in ("eu-west-1", "eu-central-1")]


def test_an_account_whose_role_cannot_be_assumed_is_skipped_with_its_reason(world: World) -> None:
    world.jobs.add("job-a")
    world.trail.add("job-a")
    deps_for, _ = members(world, refuse={ACCOUNTS[1]})
    cursor = RotationCursor()
    plan = RotationPlan(ACCOUNTS[:3])
    report = reconcile_accounts(deps_for, plan, cursor, world.config, lookback_hours=24, log_deps=world.deps)
    summary = report.as_dict()
    assert summary["visited"] == list(ACCOUNTS[:3])
    assert list(summary["unreachable"]) == [f"{ACCOUNTS[1]}/-"]  # type: ignore[call-overload]
    assert "AccessDenied" in next(iter(summary["unreachable"].values()))  # type: ignore[attr-defined]
    assert world.metrics.counts[contract.ServiceMetric.ASSUME_ROLE_FAILED] == 1
    assert summary["recorded"] == ["job-a"]  # the first account's job; the third finds it recorded
    assert summary["already_recorded"] == 1


def test_no_account_is_listed_past_its_share(world: World) -> None:
    for i in range(7):
        world.jobs.add(f"job-{i}")
        world.trail.add(f"job-{i}")
    jobs = CountingJobs(world.jobs)
    deps = dataclasses.replace(world.deps, jobs=jobs)
    plan = RotationPlan(ACCOUNTS[:1], jobs_per_account=3)
    report = reconcile_accounts(
        lambda a, r: deps, plan, RotationCursor(), world.config, lookback_hours=24, log_deps=world.deps
    )
    assert jobs.listed == 3
    assert report.as_dict()["truncated"] == [f"{ACCOUNTS[0]}/-"]
    assert len(report.as_dict()["recorded"]) == 3  # type: ignore[arg-type]


def test_the_cursor_lives_in_an_ssm_parameter() -> None:
    with mock_aws():
        import boto3

        ssm = boto3.client("ssm", region_name="eu-west-1")
        cursor = RotationCursor(ssm, "/flopsmeter/test/reconciler/cursor")
        assert cursor.load() == RotationState()  # no parameter yet
        cursor.save(RotationState(3, (ACCOUNTS[1],)))
        assert RotationCursor(ssm, "/flopsmeter/test/reconciler/cursor").load() == RotationState(3, (ACCOUNTS[1],))
        for garbage in ("garbage", "[1]", '{"next": -2, "retry": "111111111111"}'):
            ssm.put_parameter(Name="/flopsmeter/test/reconciler/cursor", Value=garbage, Type="String", Overwrite=True)
            assert cursor.load() == RotationState()  # unreadable: start over (who goes first changes, never who)
        ssm.put_parameter(Name="/flopsmeter/test/reconciler/cursor", Value='{"next": 4}', Type="String", Overwrite=True)
        assert cursor.load() == RotationState(4)  # what the previous version wrote
        cursor.save(RotationState(0, tuple(f"{i:012d}" for i in range(500))))  # more failures than 4 KB can hold
        assert len(cursor.load().retry) == MAX_RETRY


class FailingListing:
    """A member's job source whose ListTrainingJobs fails (``error``), after ``first`` summaries."""

    def __init__(self, inner: Any, error: Exception, first: int = 0) -> None:
        self.inner, self.error, self.first = inner, error, first

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def recent_terminal_jobs(self, since: datetime) -> Iterator[Mapping[str, Any]]:
        yield from list(self.inner.recent_terminal_jobs(since))[: self.first]
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        TransientError("ListTrainingJobs: ThrottlingException (Rate exceeded)"),
        PermanentError("ListTrainingJobs: AccessDeniedException (no sagemaker:ListTrainingJobs)"),
        TimeoutError("read timeout"),  # anything unexpected: still one account's failure, not the run's
    ],
    ids=["throttled", "access-denied", "unexpected"],
)
def test_an_account_whose_listing_fails_is_reported_and_retried_next_run_while_the_others_advance(
    world: World, error: Exception
) -> None:
    world.jobs.add("job-a")
    world.trail.add("job-a")
    failing = dataclasses.replace(world.deps, jobs=FailingListing(world.jobs, error))
    broken = {ACCOUNTS[0]}

    def deps_for(account: str, region: str | None) -> Dependencies:
        return failing if account in broken else world.deps

    cursor = RotationCursor()
    plan = RotationPlan(ACCOUNTS, regions=("eu-west-1", "eu-central-1"), accounts_per_run=2)
    first = reconcile_accounts(deps_for, plan, cursor, world.config, lookback_hours=24, log_deps=world.deps)
    summary = first.as_dict()
    assert summary["visited"] == list(ACCOUNTS[:2])
    assert set(summary["failed_accounts"]) == {f"{ACCOUNTS[0]}/eu-west-1", f"{ACCOUNTS[0]}/eu-central-1"}  # type: ignore[arg-type]
    assert str(error) in summary["failed_accounts"][f"{ACCOUNTS[0]}/eu-west-1"]  # type: ignore[index]
    assert summary["recorded"] == ["job-a"]  # the second account went on
    assert world.metrics.counts[contract.ServiceMetric.RECONCILE_FAILED] == 2  # alarmed: ReconcileFailedAlarm
    assert cursor.load() == RotationState(2, (ACCOUNTS[0],))  # saved: the share advanced, the failure remembered

    second = reconcile_accounts(deps_for, plan, cursor, world.config, lookback_hours=24, log_deps=world.deps)
    assert second.as_dict()["visited"] == [ACCOUNTS[0], *ACCOUNTS[2:4]]  # retried first, on top of its share
    assert second.as_dict()["retried"] == [ACCOUNTS[0]]
    assert cursor.load() == RotationState(4, (ACCOUNTS[0],))  # still failing: still remembered

    broken.clear()  # the fault passed
    third = reconcile_accounts(deps_for, plan, cursor, world.config, lookback_hours=24, log_deps=world.deps)
    assert third.as_dict()["visited"] == [ACCOUNTS[4], ACCOUNTS[0]]  # its own turn anyway: once, not twice
    assert third.as_dict()["failed_accounts"] == {}
    assert cursor.load() == RotationState(1)


def test_the_cursor_is_saved_even_when_the_run_itself_breaks(world: World) -> None:
    """Something outside any one account's visit (here: the account list's own deps_for) raising a BaseException
    subclass the visit does not catch: the share still advances."""

    class Stop(BaseException):
        pass

    def deps_for(account: str, region: str | None) -> Dependencies:
        if account == ACCOUNTS[1]:
            raise Stop
        return world.deps

    cursor = RotationCursor()
    with pytest.raises(Stop):
        reconcile_accounts(
            deps_for, RotationPlan(ACCOUNTS, accounts_per_run=3), cursor, world.config, lookback_hours=24,
            log_deps=world.deps,
        )  # fmt: skip
    assert cursor.load() == RotationState(3)


def test_organization_settings() -> None:
    env = {"AUDIT_BUCKET_NAME": "audit-bucket", "DEPLOYMENT_MODE": "organization"}
    assert set(get_args(ClassificationSettings.model_fields["DEPLOYMENT_MODE"].annotation)) == set(
        contract.DEPLOYMENT_MODES
    )
    with pytest.raises(SettingsError, match="MEMBER_ROLE_NAME is required"):
        ClassificationSettings.from_env(env)
    settings = ReconcilerSettings.from_env(
        env
        | {
            "MEMBER_ROLE_NAME": contract.member_reader_role_name("prod"),
            "MEMBER_ACCOUNTS": "111111111111,222222222222",
            "MEMBER_REGIONS": "eu-west-1,eu-central-1",
        }
    )
    assert settings.is_organization and settings.member_accounts == ("111111111111", "222222222222")
    assert settings.member_regions == ("eu-west-1", "eu-central-1")
    with pytest.raises(SettingsError, match="MEMBER_ACCOUNTS"):
        ReconcilerSettings.from_env(env | {"MEMBER_ROLE_NAME": "R", "MEMBER_ACCOUNTS": "1111,2222"})
    single = ClassificationSettings.from_env({"AUDIT_BUCKET_NAME": "audit-bucket"})
    assert not single.is_organization and single.MEMBER_ROLE_NAME is None
