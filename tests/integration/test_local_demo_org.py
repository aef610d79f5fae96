"""``flopsmeter demo --org`` end to end: three emulated accounts, the real classifier in organization mode, a
member without the reader role dead-lettered with the reason and redriven, one query over every account. The demo
self-checks and exits 1 when a check fails (about 35 s: marked slow; tests/integration/test_organization_moto.py
keeps the fast cross-account checks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flopsmeter.cli.main import main

pytestmark = pytest.mark.slow


def test_the_org_demo_passes_its_self_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--org", "--out", str(tmp_path / "demo-org")])
    out = capsys.readouterr().out
    assert code == 0, out[-4000:]
    assert "org demo checks: 6 ok, 0 failed." in out
    assert "arn:aws:iam::333333333333:role/FlopsMeterMemberReader-local" in out and "AccessDenied" in out
    assert "dead-lettered" in out
    for account in ("111111111111", "222222222222", "333333333333"):
        assert f"account={account}/" in out  # each member's digest chain in the compliance bucket
