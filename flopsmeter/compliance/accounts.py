"""Which accounts a compliance command looks at (organization mode): ``--account`` and ``--ou`` filters.

``--account ID`` (repeatable, or comma-separated) names accounts; ``--ou ID`` names organizational units, resolved
to their accounts (child OUs included) from a local accounts map file (``--accounts-map FILE``, JSON
``{"ou-ab12-cdefgh34": ["111111111111", ...], ...}``, for auditors without Organizations access) or else through
AWS Organizations ``ListAccountsForParent`` (``flopsmeter.aws.organization``; the management account or a
delegated administrator). The filters add up: a record is kept when its account is any of them.

A record's account is its key's ``account=`` (the classifier writes every account's records under its own
partition) or, in a flat folder of records, the record's ``job.account_id``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flopsmeter.audit.keys import parse_chain, parse_record_key
from flopsmeter.compliance.errors import InvalidRequest

ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
OU_ID = re.compile(r"^(ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}|r-[0-9a-z]{4,32})$")


class AccountFilterError(InvalidRequest):
    """A bad --account / --ou / --accounts-map value."""


@dataclass(frozen=True)
class AccountSelection:
    """What the user asked for: ``--account`` values, ``--ou`` values, and an optional accounts map file."""

    accounts: tuple[str, ...] = ()
    ous: tuple[str, ...] = ()
    accounts_map: Path | None = None

    def resolve(self, aws: Callable[[str], Any] | None = None) -> frozenset[str] | None:
        """The accounts to keep, or None for every account; ``aws(service)`` makes a client (Organizations)."""
        organizations = None if aws is None else (lambda: aws("organizations"))
        return resolve_accounts(self.accounts, self.ous, accounts_map=self.accounts_map, organizations=organizations)


def parse_accounts(values: Iterable[str]) -> frozenset[str]:
    accounts = {a.strip() for v in values for a in v.split(",") if a.strip()}
    bad = sorted(a for a in accounts if not ACCOUNT_ID.match(a))
    if bad:
        raise AccountFilterError(f"not a 12-digit AWS account id: {', '.join(b[:20] for b in bad)}")
    return frozenset(accounts)


def load_accounts_map(path: Path) -> dict[str, frozenset[str]]:
    """``{OU id: accounts}`` from a JSON file (see the module docstring)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise AccountFilterError(f"cannot read the accounts map {path}: {err}") from None
    if not isinstance(raw, dict) or not all(isinstance(v, list) for v in raw.values()):
        raise AccountFilterError(f"{path}: want a JSON object of OU id -> list of account ids")
    return {str(ou): parse_accounts(str(a) for a in accounts) for ou, accounts in raw.items()}


def resolve_accounts(
    accounts: Iterable[str],
    ous: Iterable[str],
    *,
    accounts_map: Path | None = None,
    organizations: Callable[[], Any] | None = None,
) -> frozenset[str] | None:
    """The accounts to keep, or None for every account (no filter given)."""
    wanted = parse_accounts(accounts)
    ou_ids = [o.strip() for v in ous for o in v.split(",") if o.strip()]
    if not ou_ids:
        return wanted or None
    bad = [o for o in ou_ids if not OU_ID.match(o)]
    if bad:
        raise AccountFilterError(f"not an organizational unit (ou-...) or root (r-...) id: {bad[0][:40]}")
    if accounts_map is not None:
        known = load_accounts_map(accounts_map)
        missing = [o for o in ou_ids if o not in known]
        if missing:
            raise AccountFilterError(f"{accounts_map} does not list {', '.join(missing)}")
        return wanted.union(*(known[o] for o in ou_ids))
    if organizations is None:
        raise AccountFilterError("--ou needs --accounts-map FILE or access to AWS Organizations")
    from flopsmeter.aws.organization import accounts_in_ou

    client = organizations()
    return wanted.union(*(accounts_in_ou(client, o) for o in ou_ids))


def account_of(key: str, body: bytes | None = None) -> str | None:
    """The account of a record (its key's ``account=``, else the record's ``job.account_id``)."""
    try:
        return parse_record_key(key)["account"]
    except ValueError:
        pass
    try:
        job = json.loads(body or b"{}").get("job") or {}
    except (ValueError, AttributeError):
        return None
    account = job.get("account_id") if isinstance(job, dict) else None
    return str(account) if account else None


def only_accounts(
    documents: Iterable[tuple[str, bytes]], accounts: frozenset[str] | None
) -> Iterator[tuple[str, bytes]]:
    """``(key, bytes)`` of the records of ``accounts`` (all of them when None). An unreadable record is kept:
    the command reports it rather than a filter hiding it."""
    for key, body in documents:
        account = None if accounts is None else account_of(key, body)
        if accounts is None or account is None or account in accounts:
            yield key, body


class AccountSource:
    """A verify source (``flopsmeter.compliance.verify.sources.Source``) showing only some accounts' chains."""

    def __init__(self, inner: Any, accounts: frozenset[str]) -> None:
        self.inner = inner
        self.accounts = accounts
        self.description = f"{inner.description} (accounts {', '.join(sorted(accounts))})"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _keep(self, key: str) -> bool:
        record = account_of(key)
        if record is not None:
            return record in self.accounts
        chain = parse_chain(key)
        return chain is None or chain[0] in self.accounts

    def record_versions(self) -> list[Any]:
        return [v for v in self.inner.record_versions() if self._keep(v.key)]

    def digest_keys(self) -> list[str]:
        return [k for k in self.inner.digest_keys() if self._keep(k)]

    def digest_versions(self) -> list[Any]:
        return [v for v in self.inner.digest_versions() if self._keep(v.key)]

    def pull_manifest(self) -> Any:
        from flopsmeter.compliance.verify.sources import PullManifest

        manifest = self.inner.pull_manifest()
        if manifest is None:
            return None
        objects = {k: v for k, v in manifest.objects.items() if self._keep(k)}
        return PullManifest(objects, frozenset(k for k in manifest.files if self._keep(k)))

    def served_partitions(self) -> tuple[dict[tuple[str, str, str], str] | None, str]:
        served, how = self.inner.served_partitions()
        if served is None:
            return None, how
        return {values: where for values, where in served.items() if values[0] in self.accounts}, how
