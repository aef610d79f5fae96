"""``flopsmeter demo`` end to end (the emulator, the real classifier and reconciler handlers, digests, verify).

The demo checks what it shows (records per job, outcomes, DLQ, alerts, verify before and after tampering) and
exits 1 when any check fails, so these tests assert its exit code and a few lines a reader relies on.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flopsmeter.cli.main import main


def _run_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    code = main(["demo", "--out", str(tmp_path / "demo"), *extra])
    out = capsys.readouterr().out
    assert code == 0, out[-4000:]
    return out


def test_demo_without_training_runs_every_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _run_demo(tmp_path, capsys, "--skip-training")

    assert "demo checks:" in out and ", 0 failed." in out
    assert "MalformedEvent" in out and "AccessDenied" in out and "PreconditionFailed" in out
    records = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "demo" / "records").glob("*.json")}
    assert len(records) == 8 and "demo-lost-event" in records
    assert {name: r["job"]["name"] for name, r in records.items()} == {name: name for name in records}
    assert "each record copy is saved under its own job's name" in out
    trail = records["demo-llama70b-known"]["cloudtrail"]
    assert trail["status"] == "found"
    assert trail["principal_arn"] == "arn:aws:sts::123456789012:assumed-role/MLEngineer/alice"


@pytest.mark.slow
@pytest.mark.torch
def test_demo_with_the_tiny_fine_tuning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _run_demo(tmp_path, capsys)

    assert "the tiny fine-tuning is classified on its metered FLOPs" in out
    assert (tmp_path / "demo" / "train" / "flops_meter.json").exists()
