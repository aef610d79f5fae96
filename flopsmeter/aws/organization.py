"""AWS Organizations reads (organization mode): the active accounts, and the accounts of an organizational unit.

The reconciler lists the accounts to visit with ``active_accounts`` (unless ``MEMBER_ACCOUNTS`` names them); the
CLI's ``--ou`` filter resolves an OU to its accounts with ``accounts_in_ou`` (or from a local accounts map file,
``flopsmeter.compliance.accounts``). Both need the caller to be the management account or a delegated
administrator of some service.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from flopsmeter.aws.errors import translate


def active_accounts(organizations: Any) -> tuple[str, ...]:
    """Every ACTIVE account of the organization (ListAccounts), sorted, so the round-robin order is stable."""
    try:
        accounts = [
            account
            for page in organizations.get_paginator("list_accounts").paginate()
            for account in page.get("Accounts", [])
        ]
    except (ClientError, BotoCoreError) as err:
        raise translate(err, "Organizations ListAccounts") from err
    return tuple(sorted(str(a["Id"]) for a in accounts if a.get("Status", "ACTIVE") == "ACTIVE"))


def accounts_in_ou(organizations: Any, parent_id: str) -> tuple[str, ...]:
    """The accounts directly under ``parent_id`` (an ``ou-...`` or the root ``r-...``) and under its child OUs."""
    found: list[str] = []
    parents = [parent_id]
    try:
        while parents:
            parent = parents.pop()
            for page in organizations.get_paginator("list_accounts_for_parent").paginate(ParentId=parent):
                found += [str(a["Id"]) for a in page.get("Accounts", [])]
            for page in organizations.get_paginator("list_organizational_units_for_parent").paginate(ParentId=parent):
                parents += [str(ou["Id"]) for ou in page.get("OrganizationalUnits", [])]
    except (ClientError, BotoCoreError) as err:
        raise translate(err, f"Organizations accounts of {parent_id}") from err
    return tuple(sorted(set(found)))
