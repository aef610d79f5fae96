"""The load figures the README and docs/reliability.md quote are ``make bench-load``'s own output: the JSON it keeps
in ``bench/results/`` (``load.json``: the deployment the stack recommends; ``load-fallback.json``: the no-trail
fallback). A re-run that changes a figure fails here until the docs say so; a kept result that did not pass fails
too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results"
ROWS = {  # the row's first cell starts with this -> the result file it quotes
    "as the stack recommends": "load.json",
    "no-trail fallback": "load-fallback.json",
}
DOCS = [REPO / "README.md", REPO / "docs" / "reliability.md"]


def result(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RESULTS / name).read_text(encoding="utf-8"))
    return data


def number(value: float) -> str:
    """As the docs write figures: thousands separated by a thin space ("1 863")."""
    return f"{value:,}".replace(",", "\u202f") if isinstance(value, int) else str(value)


def expected_cells(r: dict[str, Any]) -> list[str]:
    lookups = str(r["lookup_events_calls"])
    if r["lookup_events_calls"]:
        lookups += f", busiest 10 s {r['lookup_events_peak_per_s']}/s"
    return [
        number(r["events"]),
        number(r["records_written"]),
        number(r["duplicates_suppressed"]),
        number(r["duplicates_written"]),
        number(r["lost"]),
        f"{r['dlq']} / {r['dlq_expected']}",
        lookups,
        str(r["records_per_second"]),
        f"{round(r['wall_s'])} s",
    ]


def quoted_rows(doc: Path) -> dict[str, list[str]]:
    rows = {}
    for line in doc.read_text(encoding="utf-8").splitlines():
        cells = [c.strip().strip("*").strip() for c in line.strip().strip("|").split("|")]
        for start, name in ROWS.items():
            if cells and cells[0].startswith(start):
                rows[name] = cells[1:]
    return rows


@pytest.mark.parametrize("name", sorted(set(ROWS.values())))
def test_each_kept_result_passed(name: str) -> None:
    r = result(name)
    assert r["ok"] is True and r["drained"] is True
    assert r["lost"] == 0 and r["duplicates_written"] == 0 and r["dlq"] == r["dlq_expected"]
    assert r["dlq_kinds"] == {k: v for k, v in r["dlq_kinds_expected"].items() if v}


def test_the_recommended_deployment_never_looks_up_cloudtrail() -> None:
    """(Its wall time depends on the machine's load, which the README states next to it.)"""
    r = result("load.json")
    assert r["deployment"].startswith("as recommended") and r["lookup_events_calls"] == 0
    assert r["launches_captured"] == r["jobs"] and r["events"] >= 1999


def test_the_fallback_keeps_the_documented_lookup_pace() -> None:
    r = result("load-fallback.json")
    assert r["deployment"].startswith("no-trail fallback") and r["launches_captured"] == 0
    assert r["lookup_pace_per_environment_per_s"] == 0.4
    assert r["lookup_events_calls"] >= r["jobs"] and r["lookup_events_peak_per_s"] <= r["lookup_allowed_peak_per_s"]


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_the_docs_quote_the_kept_results(doc: Path) -> None:
    rows = quoted_rows(doc)
    assert sorted(rows) == sorted(ROWS.values()), f"{doc.name}: one row per deployment in the load table"
    for name, cells in rows.items():
        assert cells[:9] == expected_cells(result(name)), f"{doc.name}: the {name} row"


def test_the_readme_names_the_machine_load_of_the_kept_run() -> None:
    before, after = result("load.json")["load_average_1m"]
    assert f"load average {before} before, {after} after" in (REPO / "README.md").read_text(encoding="utf-8")
