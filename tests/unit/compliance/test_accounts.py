"""Issue 14: the compliance commands over an organization's records: ``--account`` and ``--ou`` filters
(flopsmeter.compliance.accounts), an OU resolved from an accounts map file or AWS Organizations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from flopsmeter.audit.keys import digest_key
from flopsmeter.aws.organization import accounts_in_ou, active_accounts
from flopsmeter.cli.main import main
from flopsmeter.compliance.accounts import (
    AccountFilterError,
    AccountSource,
    only_accounts,
    resolve_accounts,
)
from flopsmeter.compliance.verify.sources import ObjectVersion
from tests.support.records import key_of, make_record, write_mirror

A, B, C = "111111111111", "222222222222", "333333333333"
OU = "ou-ab12-cdefgh34"


def in_account(name: str, account: str) -> Any:
    record = make_record(name)
    arn = record.job.arn.replace("123456789012", account)
    return record.model_copy(update={"job": record.job.model_copy(update={"account_id": account, "arn": arn})}).sealed()


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    return write_mirror(tmp_path / "mirror", [in_account("job-a", A), in_account("job-b", B), in_account("job-c", C)])


def test_accounts_and_ous_add_up_from_an_accounts_map(tmp_path: Path) -> None:
    accounts_map = tmp_path / "accounts.json"
    accounts_map.write_text(json.dumps({OU: [B, C]}))
    assert resolve_accounts([], []) is None
    assert resolve_accounts([f"{A},{B}"], []) == {A, B}
    assert resolve_accounts([A], [OU], accounts_map=accounts_map) == {A, B, C}
    with pytest.raises(AccountFilterError, match="does not list ou-zz12-zzzzzzzz"):
        resolve_accounts([], ["ou-zz12-zzzzzzzz"], accounts_map=accounts_map)
    with pytest.raises(AccountFilterError, match="12-digit"):
        resolve_accounts(["1234"], [])
    with pytest.raises(AccountFilterError, match="organizational unit"):
        resolve_accounts([], ["finance"], accounts_map=accounts_map)
    with pytest.raises(AccountFilterError, match="--accounts-map"):
        resolve_accounts([], [OU])


def test_an_ou_resolves_through_organizations_child_ous_included() -> None:
    with mock_aws():
        org = boto3.client("organizations", region_name="us-east-1")
        org.create_organization(FeatureSet="ALL")
        root = org.list_roots()["Roots"][0]["Id"]
        parent = org.create_organizational_unit(ParentId=root, Name="ml")["OrganizationalUnit"]["Id"]
        child = org.create_organizational_unit(ParentId=parent, Name="research")["OrganizationalUnit"]["Id"]
        ids = []
        for name, where in (("team-a", parent), ("team-b", child), ("elsewhere", root)):
            status = org.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
            ids.append(status["AccountId"])
            org.move_account(AccountId=status["AccountId"], SourceParentId=root, DestinationParentId=where)
        assert accounts_in_ou(org, parent) == tuple(sorted(ids[:2]))
        assert resolve_accounts([], [parent], organizations=lambda: org) == set(ids[:2])
        assert set(ids) < set(active_accounts(org))  # the management account is listed too


def test_only_the_selected_accounts_records_mirror_or_flat_folder(mirror: Path, tmp_path: Path) -> None:
    documents = [(key_of(in_account(n, a)), b"{}") for n, a in (("j1", A), ("j2", B))]
    assert [k for k, _ in only_accounts(documents, frozenset({B}))] == [documents[1][0]]
    flat = [("j1.json", in_account("j1", A).to_json_bytes()), ("j2.json", in_account("j2", B).to_json_bytes())]
    assert [k for k, _ in only_accounts(flat, frozenset({A}))] == ["j1.json"]
    assert [k for k, _ in only_accounts([("bad.json", b"not json")], frozenset({A}))] == ["bad.json"]  # reported


def test_verify_sees_only_the_selected_accounts_chains() -> None:
    class Source:
        description = "test"

        def record_versions(self) -> list[ObjectVersion]:
            return [ObjectVersion(key_of(in_account("j", a)), None, None) for a in (A, B)]

        def digest_keys(self) -> list[str]:
            from datetime import UTC, datetime

            return [digest_key(a, "eu-west-1", datetime(2026, 11, 20, 12, tzinfo=UTC)) for a in (A, B)]

    source = AccountSource(Source(), frozenset({B}))
    assert [v.key for v in source.record_versions()] == [key_of(in_account("j", B))]
    assert [k.split("/")[2] for k in source.digest_keys()] == [f"account={B}"]


def test_one_query_over_every_account_or_some(mirror: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql = "SELECT account, job.name AS job FROM records ORDER BY account"
    assert main(["query", sql, "--dir", str(mirror), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["account"], r["job"]) for r in rows] == [(A, "job-a"), (B, "job-b"), (C, "job-c")]
    assert main(["query", "--dir", str(mirror), "--account", A, "--account", C, "--format", "json"]) == 0
    assert sorted(r["job"] for r in json.loads(capsys.readouterr().out)) == ["job-a", "job-c"]


def test_report_and_reevaluate_take_the_filters(
    mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    accounts_map = tmp_path / "accounts.json"
    accounts_map.write_text(json.dumps({OU: [B]}))
    out = tmp_path / "report.html"
    args = ["--dir", str(mirror), "--ou", OU, "--accounts-map", str(accounts_map)]
    assert main(["report", *args, "--out", str(out), "--no-verify"]) == 0
    html = out.read_text()
    assert "job-b" in html and "job-a" not in html and "job-c" not in html
    capsys.readouterr()
    assert main(["reevaluate", *args, "--policy", "aws-30pct-2026", "--all", "--format", "json"]) == 0
    assert [r["job"] for r in json.loads(capsys.readouterr().out)["results"]] == ["job-b"]
