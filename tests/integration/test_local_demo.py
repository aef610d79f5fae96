"""``flopsmeter demo`` end to end (the emulator, the real classifier and reconciler handlers, digests, verify).

The demo checks what it shows (records per job, outcomes, DLQ, alerts, verify before and after tampering) and
exits 1 when any check fails, so these tests assert its exit code and a few lines a reader relies on.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from flopsmeter.cli.main import main

REPO = Path(__file__).resolve().parents[2]
LOCAL_DOC = (REPO / "docs" / "local.md").read_text(encoding="utf-8")
LOCAL_TEXT = " ".join(LOCAL_DOC.split())  # the prose with its line breaks as spaces
DEMO_OUT = ".local/demo"  # where the README's and docs' commands expect the demo's files


def _figures(out: str, demo_dir: Path) -> tuple[int, int]:
    """(checks ok, records in the bucket at the end) of a run."""
    checks = int(re.search(r"demo checks: (\d+) ok, 0 failed", out)[1])  # type: ignore[index]
    return checks, len(list((demo_dir / "mirror" / "records").rglob("*.json")))


def _sections(out: str) -> list[str]:
    return re.findall(r"─ (\d+\. .+?) \(\d+ s\) ─", out)


def _run_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    code = main(["demo", "--out", str(tmp_path / DEMO_OUT), *extra])
    out = capsys.readouterr().out
    assert code == 0, out[-4000:]
    return out


def test_demo_without_training_runs_every_case(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the demo's default place, where the README's commands look
    demo = tmp_path / DEMO_OUT
    out = _run_demo(tmp_path, capsys, "--skip-training")

    assert "demo checks:" in out and ", 0 failed." in out
    assert "MalformedEvent" in out and "AccessDenied" in out and "PreconditionFailed" in out
    records = {p.stem: json.loads(p.read_text()) for p in (demo / "records").glob("*.json")}
    assert len(records) == 8 and "demo-lost-event" in records
    assert {name: r["job"]["name"] for name, r in records.items()} == {name: name for name in records}
    assert "each record copy is saved under its own job's name" in out
    trail = records["demo-llama70b-known"]["cloudtrail"]
    assert trail["status"] == "found"
    assert trail["principal_arn"] == "arn:aws:sts::123456789012:assumed-role/MLEngineer/alice"

    checks, stored = _figures(out, demo)
    assert f"`flopsmeter demo --skip-training`: {checks} checks ok, {stored} records" in LOCAL_TEXT
    sections = _sections(out)
    assert len(sections) >= 14 and [int(s.split(".")[0]) for s in sections] == list(range(1, len(sections) + 1))
    assert all(f"\n{section}\n" in LOCAL_DOC for section in sections), sections  # docs/local.md lists them
    assert "the suggested next steps run on the demo's output" in out
    _the_readmes_commands_run(capsys)
    assert (demo / "report.html").is_file()


def _the_readmes_commands_run(capsys: pytest.CaptureFixture[str]) -> None:
    """Every ``flopsmeter ... --dir .local/demo/...`` line of the README runs on the demo's output."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    commands = [line.split("  #", 1)[0].strip() for line in readme.splitlines()
                if line.startswith("flopsmeter ") and f"--dir {DEMO_OUT}" in line]  # fmt: skip
    assert len(commands) >= 5
    for command in commands:
        code = main(shlex.split(command)[1:])
        out, err = capsys.readouterr()
        assert code == 0, f"{command}: exit {code}\n{out[-2000:]}\n{err[-2000:]}"


def test_without_torch_the_demo_says_so_and_skips_the_fine_tuning(monkeypatch, capsys) -> None:
    ran: dict[str, object] = {}
    monkeypatch.setattr("flopsmeter.cli.extras.training_available", lambda: False)
    monkeypatch.setattr("flopsmeter.local.demo.run_demo", lambda **kwargs: ran.update(kwargs) or 0)
    assert main(["demo"]) == 0
    assert ran["train"] is False
    assert "pip install 'aiact-flopsmeter[local,training]'" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.torch
def test_demo_with_the_tiny_fine_tuning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _run_demo(tmp_path, capsys)

    assert "the tiny fine-tuning is classified on its metered FLOPs" in out
    assert (tmp_path / DEMO_OUT / "train" / "flops_meter.json").exists()
    checks, stored = _figures(out, tmp_path / DEMO_OUT)
    assert f"`flopsmeter demo` (with the tiny fine-tuning): {checks} checks ok, {stored} records" in LOCAL_TEXT
