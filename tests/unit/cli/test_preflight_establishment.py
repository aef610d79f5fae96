"""``--established-outside-eu`` on ``estimate`` / ``gate`` (and ``classify``): the provider's establishment reaches the
pre-flight's obligations, so a crossing lists AI Act Art. 54 (an authorised representative) exactly as the record of
a deployment with ``established_outside_eu`` lists it; below the threshold nothing is listed either way."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from flopsmeter.cli.main import main
from tests.support.lineages import lineage_job

ART_54 = "authorised_representative"
RUN = ["--config", "llama-3.1-8b", "--seq-len", "4096", "--pretrain-flops", "1.5e24", "--json"]
CROSSING_TOKENS = "2e13"  # ~1e24 FLOPs: above every policy's threshold for a 1.5e24 base, below 1e25
BELOW_TOKENS = "2e9"  # ~1e20 FLOPs: below every threshold


def _preflight(capsys: pytest.CaptureFixture[str], command: str, tokens: str, *flags: str) -> tuple[int, Any]:
    code = main([command, *RUN, "--tokens", tokens, *flags])
    return code, json.loads(capsys.readouterr().out)


def _items(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["obligation_id"]: item for item in report["obligations"]["items"]}


def _record_item() -> dict[str, Any]:
    """The Art. 54 item as the service writes it into a record when its deployment is established outside the EU."""
    record = lineage_job("ft-outside-eu", 4e24, end=datetime(2026, 3, 1, 12, 0, tzinfo=UTC), outside_eu=True)
    assert record.obligations is not None
    return next(i.model_dump(mode="json") for i in record.obligations.items if i.obligation_id == ART_54)


@pytest.mark.parametrize(("command", "exit_code"), [("estimate", 0), ("gate", 1)])
def test_a_crossing_lists_art_54_with_the_flag_as_the_record_does(capsys, command: str, exit_code: int) -> None:
    code, report = _preflight(capsys, command, CROSSING_TOKENS, "--established-outside-eu")
    assert code == exit_code
    assert {c["outcome"] for c in report["classification"]["classifications"]} == {"exceeds"}
    obligations = report["obligations"]
    assert obligations["triggered"] and obligations["established_outside_eu"] is True
    item = _items(report)[ART_54]
    assert {k: item[k] for k in _record_item()} == _record_item()
    assert not any("--established-outside-eu" in note for note in obligations["notes"])
    assert item["article"].startswith("AI Act Art. 54")


@pytest.mark.parametrize(("command", "exit_code"), [("estimate", 0), ("gate", 1)])
def test_a_crossing_without_the_flag_lists_no_art_54(capsys, command: str, exit_code: int) -> None:
    code, report = _preflight(capsys, command, CROSSING_TOKENS)
    assert code == exit_code
    assert report["obligations"]["triggered"] and report["obligations"]["established_outside_eu"] is False
    items = _items(report)
    assert "provider" in items and ART_54 not in items
    assert any("--established-outside-eu" in note for note in report["obligations"]["notes"])  # the assumption, said


@pytest.mark.parametrize("command", ["estimate", "gate"])
@pytest.mark.parametrize("flags", [(), ("--established-outside-eu",)])
def test_below_the_threshold_no_provider_obligations_either_way(capsys, command: str, flags: tuple[str, ...]) -> None:
    code, report = _preflight(capsys, command, BELOW_TOKENS, *flags)
    assert code == 0
    assert {c["outcome"] for c in report["classification"]["classifications"]} == {"below"}
    assert report["obligations"]["triggered"] is False and report["obligations"]["items"] == []


def test_the_table_and_classify_show_art_54(capsys) -> None:
    assert main(["estimate", *RUN[:-1], "--tokens", CROSSING_TOKENS, "--established-outside-eu"]) == 0
    assert f"{ART_54}: AI Act Art. 54" in capsys.readouterr().out
    assert main(["classify", "--flops", "1e24", "--pretrain-flops", "1.5e24", "--established-outside-eu"]) == 0
    assert f"{ART_54}: AI Act Art. 54" in capsys.readouterr().out


def test_the_table_says_what_the_pre_flight_assumed(capsys) -> None:
    assert main(["estimate", *RUN[:-1], "--tokens", CROSSING_TOKENS]) == 0
    out = capsys.readouterr().out
    assert "Note:" in out and "--established-outside-eu" in out  # the EU-establishment assumption, on the table too
