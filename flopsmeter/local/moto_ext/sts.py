"""STS: moto's AssumeRole succeeds for any role ARN, existing or not; AWS refuses a role that is not there.

After ``patch()`` an AssumeRole on a member reader role (``flopsmeter.contract.MEMBER_READER_ROLE_PREFIX``) that
does not exist in its account's IAM is refused with ``AccessDenied``, as AWS does (the organization demo's member
whose StackSet instance is missing). Other roles keep moto's behaviour, so the emulator's other callers are unchanged.
"""

from __future__ import annotations

from typing import Any

from flopsmeter.contract import MEMBER_READER_ROLE_PREFIX


def _role_exists(role_arn: str) -> bool:
    from moto.iam.models import iam_backends

    parts = role_arn.split(":", 5)
    if len(parts) != 6:
        return False
    partition, account, name = parts[1], parts[4], parts[5].rsplit("/", 1)[-1]
    if account not in iam_backends:
        return False
    return any(role.name == name for role in iam_backends[account][partition].get_roles())


def patch() -> None:
    from moto.sts.exceptions import STSClientError
    from moto.sts.models import STSBackend

    original = STSBackend.assume_role
    if getattr(original, "_flopsmeter", False):
        return

    def assume_role(self: Any, *args: Any, **kwargs: Any) -> Any:
        role_arn = str(kwargs.get("role_arn", ""))
        name = role_arn.rsplit("/", 1)[-1]
        if name.startswith(MEMBER_READER_ROLE_PREFIX) and not _role_exists(role_arn):
            raise STSClientError(
                "AccessDenied", f"User is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
            )
        return original(self, *args, **kwargs)

    assume_role._flopsmeter = True  # type: ignore[attr-defined]
    STSBackend.assume_role = assume_role  # type: ignore[method-assign]
