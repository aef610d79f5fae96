"""Records of managed customization jobs (method ``estimated``, Bedrock keys) read by the compliance CLI."""

from __future__ import annotations

import json
from pathlib import Path

from flopsmeter.cli.main import main
from flopsmeter.service.bedrock import classify_bedrock_job
from flopsmeter.service.dependencies import ClassifyRequest
from tests.support.fakes import World


def test_a_bedrock_record_is_reported_and_queried(tmp_path: Path, capsys) -> None:
    world = World()
    world.bedrock.add("support-bot-ft")
    result = classify_bedrock_job(ClassifyRequest("support-bot-ft"), world.deps, world.config)
    assert result.key is not None and result.record is not None
    path = tmp_path / result.key
    path.parent.mkdir(parents=True)
    path.write_bytes(result.record.to_json_bytes())
    out = tmp_path / "report.html"
    assert main(["report", "--dir", str(tmp_path), "--job", "support-bot-ft", "--out", str(out), "--no-verify"]) == 0
    html = out.read_text()
    assert "estimated from what a managed service records" in html and "support-bot-ft" in html
    capsys.readouterr()
    assert main(["query", "--dir", str(tmp_path), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(row["job"], row["method"]) for row in rows] == [("support-bot-ft", "estimated")]
