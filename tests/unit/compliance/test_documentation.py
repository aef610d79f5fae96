"""The compute and energy section of the technical documentation, drafted from a lineage's records."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flopsmeter.cli.main import main
from flopsmeter.compliance.documentation import (
    DocumentationError,
    build,
    flops_text,
    render_html,
    render_markdown,
    sig2,
)
from flopsmeter.domain.deadlines import due_text, notification_due
from tests.support.lineages import systemic_lineage
from tests.support.records import key_of, write_mirror


@pytest.mark.parametrize(
    ("value", "text"),
    [(2.345e24, "2.3 × 10^24 FLOP"), (9.96e24, "1.0 × 10^25 FLOP"), (3.3e22, "3.3 × 10^22 FLOP"), (None, "unknown")],
)
def test_flops_to_two_significant_figures(value: float | None, text: str) -> None:
    assert flops_text(value) == text


def test_sig2_of_zero() -> None:
    assert sig2(0.0) == ("0", 0) and flops_text(0.0) == "0 FLOP"


def _mirror(tmp_path):  # type: ignore[no-untyped-def]
    first, second = systemic_lineage()
    return write_mirror(tmp_path / "mirror", [first, second]), first, second


def test_markdown_states_compute_method_uncertainty_base_policies_energy_and_provenance(tmp_path) -> None:  # type: ignore[no-untyped-def]
    root, first, second = _mirror(tmp_path)
    doc = build(root, "ft-405b-2", now=datetime(2026, 3, 6, tzinfo=UTC))
    assert [j.record.job.name for j in doc.jobs] == ["ft-405b-1", "ft-405b-2"]
    text = render_markdown(doc)
    assert "# Training compute and energy: ft-405b-2" in text
    assert "**4.1 × 10^24 FLOP**" in text  # 2.0e24 + 2.1e24, to two significant figures
    assert "| `ft-405b-1` |" in text and "2.0 × 10^24 FLOP" in text and "2.1 × 10^24 FLOP" in text
    assert "Method of estimation | metered" in text
    assert "30 %" in text and "Annex A.2" in text
    assert "3.8 × 10^25 FLOP (source: catalog" in text and "Systemic-risk model: yes" in text
    for policy in ("aws-30pct-2026", "eu-guideline-2025-07"):
        assert policy in text
    assert "Annex XI 2(e)" in text and "PUE 1.15" in text
    energy = (first.energy.kwh or 0) + (second.energy.kwh or 0)  # type: ignore[union-attr]
    assert second.energy is not None and second.energy.lineage_kwh == pytest.approx(energy)
    assert f"**{float(f'{energy:.2g}'):,.0f} kWh**" in text
    assert first.cloudtrail.event_id in text and second.sha256 in text and key_of(second) in text


def test_markdown_states_the_notification_due_date_on_a_systemic_crossing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    root, _first, second = _mirror(tmp_path)
    assert second.obligations is not None and second.obligations.triggered
    due = second.obligations.notification_due_at
    assert due is not None and second.obligations.crossed_at is not None
    assert due == notification_due(second.obligations.crossed_at)
    text = render_markdown(build(root, "ft-405b-2"))
    assert f"Notification to the Commission due by {due_text(due)}" in text and "Europe/Brussels" in text
    assert "Art. 52(1)" in text and "Art. 53(1)(a)" in text


def test_html_is_the_same_content_with_text_escaped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    first, second = systemic_lineage()
    second = second.model_copy(update={"warnings": ["<script>alert(1)</script>"]}).sealed()
    root = write_mirror(tmp_path / "m", [first, second])
    page = render_html(build(root, "ft-405b-2"))
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "4.1 × 10^24 FLOP" in page


def test_missing_ancestor_is_said(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _first, second = systemic_lineage()
    root = write_mirror(tmp_path / "m", [second])
    text = render_markdown(build(root, "ft-405b-2"))
    assert "no record found for ft-405b-1" in text
    assert "Modification** | | | | | **" in text  # the lineage total comes from the leaf record


def test_unknown_job_is_an_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    root, _first, _second = _mirror(tmp_path)
    with pytest.raises(DocumentationError, match="no record for job"):
        build(root, "nope")


def test_cli_writes_markdown_and_html(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    root, _first, _second = _mirror(tmp_path)
    out = tmp_path / "doc" / "ft-405b-2"
    assert main(["report", "--dir", str(root), "--job", "ft-405b-2", "--documentation", "--out", str(out)]) == 0
    assert "Notification to the Commission" in out.with_suffix(".md").read_text()
    assert out.with_suffix(".html").read_text().startswith("<!DOCTYPE html>")
    assert main(["report", "--dir", str(root), "--documentation"]) == 2
    assert "--documentation needs --job" in capsys.readouterr().err
