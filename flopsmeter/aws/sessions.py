"""Cross-account sessions (organization mode): the compliance account reads a member account's job facts through
that account's read-only role (``flopsmeter.contract.member_reader_role_name``, deployed by the member StackSet).

``AccountSessions.clients_for(account, region)`` is a client factory for one member account: it assumes
``arn:<partition>:iam::<account>:role/<role name>`` once, caches the temporary credentials and the clients built
from them per account, and assumes again ``REFRESH_BEFORE`` ahead of the credentials' expiry (never with
credentials about to run out mid-batch). The compliance account itself is never assumed into: its own
credentials (the function's role) serve it. Single-account mode builds no ``AccountSessions`` at all.

A failed AssumeRole (the role is not deployed yet, the trust policy refuses, STS throttles) raises
``MemberRoleUnavailable``, a *transient* error: the StackSet may not have reached a new account yet, so the
message is retried, and its reason names the role and the error code.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from flopsmeter.aws.errors import error_code
from flopsmeter.errors import InvalidValue, MemberRoleUnavailable, TransientError

REFRESH_BEFORE = timedelta(minutes=5)  # assume again when the credentials have less than this left
SESSION_SECONDS = 3600  # the member role's MaxSessionDuration (infra/member.py)
SESSION_NAME = "flopsmeter"

Credentials = dict[str, Any]  # STS AssumeRole ``Credentials``: AccessKeyId, SecretAccessKey, SessionToken, Expiration
# (credentials, service, region) -> a boto3 client acting with those credentials
ClientBuilder = Callable[[Credentials, str, str | None], Any]


def partition_of(region: str | None) -> str:
    """The AWS partition of ``region`` (botocore's endpoint data): aws, aws-cn, aws-us-gov, ..."""
    import botocore.session

    return str(botocore.session.get_session().get_partition_for_region(region or "us-east-1"))


def member_role_arn(account: str, role_name: str, *, partition: str = "aws") -> str:
    if not (len(account) == 12 and account.isdigit()):
        raise InvalidValue(f"not an AWS account id: {account[:20]!r}")
    return f"arn:{partition}:iam::{account}:role/{role_name}"


@dataclass
class _Session:
    credentials: Credentials
    expires: datetime
    clients: dict[tuple[str, str | None], Any] = field(default_factory=dict)


class AccountSessions:
    """Assumed-role clients per member account, cached and refreshed before expiry (thread-safe)."""

    def __init__(
        self,
        sts: Any,
        *,
        role_name: str,
        build_client: ClientBuilder,
        partition: str = "aws",
        home_account: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sts = sts
        self.role_name = role_name
        self.partition = partition
        self.build_client = build_client
        self.clock = clock
        self._home = home_account
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    @property
    def home_account(self) -> str:
        """The account these functions run in (GetCallerIdentity, asked once)."""
        if self._home is None:
            try:
                self._home = str(self.sts.get_caller_identity()["Account"])
            except (ClientError, BotoCoreError) as err:
                raise TransientError(f"STS GetCallerIdentity: {err}") from err
        return self._home

    def is_home(self, account: str | None) -> bool:
        return account is None or account == self.home_account

    def role_arn(self, account: str) -> str:
        return member_role_arn(account, self.role_name, partition=self.partition)

    def clients_for(self, account: str, region: str | None = None) -> Callable[[str], Any]:
        """A client factory (service name -> client) acting in ``account`` through its reader role.

        Assumes the role now if there is no fresh session (raises ``MemberRoleUnavailable``), so a missing role
        fails here, before anything is read.
        """
        self._session(account)

        def clients(service: str) -> Any:
            session = self._session(account)
            key = (service, region)
            if key not in session.clients:
                session.clients[key] = self.build_client(session.credentials, service, region)
            return session.clients[key]

        return clients

    def _session(self, account: str) -> _Session:
        with self._lock:
            session = self._sessions.get(account)
            if session is None or session.expires - self.clock() <= REFRESH_BEFORE:
                session = self._assume(account)
                self._sessions[account] = session
            return session

    def _assume(self, account: str) -> _Session:
        arn = self.role_arn(account)
        try:
            reply = self.sts.assume_role(RoleArn=arn, RoleSessionName=SESSION_NAME, DurationSeconds=SESSION_SECONDS)
        except ClientError as err:
            code = error_code(err) or "ClientError"
            raise MemberRoleUnavailable(
                f"cannot assume {arn} ({code}): is the member stack deployed in account {account} and does the "
                f"role trust this function's role? {err}",
                account=account,
                role_arn=arn,
                code=code,
            ) from err
        except BotoCoreError as err:
            raise MemberRoleUnavailable(
                f"cannot assume {arn}: {err}", account=account, role_arn=arn, code=type(err).__name__
            ) from err
        credentials = dict(reply["Credentials"])
        expires = credentials["Expiration"]
        if isinstance(expires, str):
            expires = datetime.fromisoformat(expires.replace("Z", "+00:00"))
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        return _Session(credentials, expires)
