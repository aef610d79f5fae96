"""Issue 14: cross-account sessions (flopsmeter.aws.sessions): the member role's ARN per account and partition, one
AssumeRole per account while the credentials are fresh, a new one before they expire, failures transient with
the role and the reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from flopsmeter.aws.sessions import REFRESH_BEFORE, AccountSessions, member_role_arn, partition_of
from flopsmeter.contract import member_reader_role_name
from flopsmeter.errors import MemberRoleUnavailable, TransientError

HOME, MEMBER, OTHER = "999999999999", "111111111111", "222222222222"
ROLE = member_reader_role_name("prod")
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class FakeSts:
    """AssumeRole answers with credentials valid for an hour from the fake clock; ``refuse`` accounts fail."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.calls: list[str] = []
        self.refuse: dict[str, Exception] = {}

    def assume_role(self, *, RoleArn: str, RoleSessionName: str, DurationSeconds: int) -> dict[str, Any]:  # noqa: N803
        self.calls.append(RoleArn)
        account = RoleArn.split(":")[4]
        if account in self.refuse:
            raise self.refuse[account]
        n = len(self.calls)
        return {
            "Credentials": {
                "AccessKeyId": f"ASIA{n}",
                "SecretAccessKey": "s",
                "SessionToken": "t",
                "Expiration": self.clock.now + timedelta(seconds=DurationSeconds),
            }
        }

    def get_caller_identity(self) -> dict[str, str]:
        return {"Account": HOME}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sts(clock: Clock) -> FakeSts:
    return FakeSts(clock)


@pytest.fixture
def sessions(sts: FakeSts, clock: Clock) -> AccountSessions:
    def build(credentials: dict[str, Any], service: str, region: str | None) -> tuple[str, str, str | None]:
        return (credentials["AccessKeyId"], service, region)

    return AccountSessions(sts, role_name=ROLE, build_client=build, clock=clock)


@pytest.mark.parametrize(
    ("region", "partition"),
    [("eu-west-1", "aws"), ("us-east-1", "aws"), ("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")],
)
def test_the_member_role_arn_names_the_account_and_the_regions_partition(region: str, partition: str) -> None:
    assert partition_of(region) == partition
    arn = member_role_arn(MEMBER, ROLE, partition=partition_of(region))
    assert arn == f"arn:{partition}:iam::{MEMBER}:role/FlopsMeterMemberReader-prod"


@pytest.mark.parametrize("account", ["12345", "abcdefghijkl", "1111111111111", ""])
def test_an_account_that_is_not_twelve_digits_is_refused(account: str) -> None:
    with pytest.raises(ValueError, match="not an AWS account id"):
        member_role_arn(account, ROLE)


def test_one_assume_role_per_account_while_the_credentials_are_fresh(sessions: AccountSessions, sts: FakeSts) -> None:
    member = sessions.clients_for(MEMBER, "eu-west-1")
    first = member("sagemaker")
    assert member("sagemaker") is first  # the client is cached too
    assert sessions.clients_for(MEMBER, "eu-west-1")("cloudwatch") == ("ASIA1", "cloudwatch", "eu-west-1")
    assert sessions.clients_for(OTHER)("sagemaker") == ("ASIA2", "sagemaker", None)
    assert sts.calls == [member_role_arn(MEMBER, ROLE), member_role_arn(OTHER, ROLE)]


def test_the_role_is_assumed_again_before_the_credentials_expire(
    sessions: AccountSessions, sts: FakeSts, clock: Clock
) -> None:
    member = sessions.clients_for(MEMBER)
    assert member("sagemaker")[0] == "ASIA1"
    clock.now = T0 + timedelta(hours=1) - REFRESH_BEFORE - timedelta(seconds=1)  # still more than the margin left
    assert member("sagemaker")[0] == "ASIA1" and len(sts.calls) == 1
    clock.now += timedelta(seconds=1)  # exactly the margin left: refresh now, not when it has run out
    assert member("sagemaker")[0] == "ASIA2" and len(sts.calls) == 2
    assert member("cloudwatch")[0] == "ASIA2"  # every client is rebuilt on the new credentials


def test_the_compliance_account_is_home_and_is_never_assumed_into(sessions: AccountSessions, sts: FakeSts) -> None:
    assert sessions.is_home(HOME) and sessions.is_home(None) and not sessions.is_home(MEMBER)
    assert sts.calls == []


def test_access_denied_is_transient_and_says_which_role_and_why(sessions: AccountSessions, sts: FakeSts) -> None:
    sts.refuse[OTHER] = ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "not authorized to perform sts:AssumeRole"}}, "AssumeRole"
    )
    with pytest.raises(MemberRoleUnavailable) as caught:
        sessions.clients_for(OTHER)
    err = caught.value
    assert isinstance(err, TransientError)
    assert (err.account, err.code, err.role_arn) == (OTHER, "AccessDenied", member_role_arn(OTHER, ROLE))
    assert err.role_arn in str(err) and "AccessDenied" in str(err) and "member stack" in str(err)
    del sts.refuse[OTHER]  # the StackSet reached the account: the next delivery succeeds
    assert sessions.clients_for(OTHER)("sagemaker")[1] == "sagemaker"


def test_a_connection_failure_to_sts_is_transient_too(sessions: AccountSessions, sts: FakeSts) -> None:
    sts.refuse[MEMBER] = EndpointConnectionError(endpoint_url="https://sts.amazonaws.com")
    with pytest.raises(MemberRoleUnavailable, match="EndpointConnectionError|Could not connect"):
        sessions.clients_for(MEMBER)
