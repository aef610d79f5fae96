"""The record's optional energy and obligations blocks: additive to schema v1, hashed, filled from the record."""

from __future__ import annotations

import json

import pytest

from flopsmeter.audit.blocks import BlockInputs, with_energy_and_obligations
from flopsmeter.audit.record import AuditRecord, stored_sha256_matches
from flopsmeter.domain.energy import EnergyAssumptions
from tests.support.lineages import systemic_lineage
from tests.support.records import make_record


def test_a_record_without_the_blocks_is_stored_and_hashed_as_before() -> None:
    record = make_record()
    document = json.loads(record.to_json_bytes())
    assert "energy" not in document and "obligations" not in document
    assert stored_sha256_matches(document)
    again = AuditRecord.model_validate(document)
    assert again.sealed().sha256 == record.sha256


def test_blocks_round_trip_and_are_covered_by_the_hash() -> None:
    _first, second = systemic_lineage()
    document = json.loads(second.to_json_bytes())
    assert document["energy"]["method"] == "board_power" and document["obligations"]["triggered"] is True
    assert stored_sha256_matches(document)
    assert AuditRecord.model_validate_json(second.to_json_bytes()) == second
    document["obligations"]["notification_due_at"] = "2099-01-01T00:00:00Z"
    assert not stored_sha256_matches(document)


def test_every_record_gets_an_energy_figure_and_below_the_line_no_obligations() -> None:
    record = with_energy_and_obligations(make_record(flops=1e20))
    assert record.energy is not None and record.energy.kwh == pytest.approx(8 * 0.7 * 2 * 1.15)
    assert record.energy.lineage_kwh == record.energy.kwh
    assert record.obligations is not None and not record.obligations.triggered and not record.obligations.items


def test_energy_assumptions_come_from_the_inputs() -> None:
    inputs = BlockInputs(energy=EnergyAssumptions(pue=1.5, power_utilisation=0.5))
    record = with_energy_and_obligations(make_record(flops=1e20), inputs)
    assert record.energy is not None and record.energy.pue == 1.5
    assert record.energy.kwh == pytest.approx(8 * 0.7 * 2 * 0.5 * 1.5)


def test_a_child_without_its_parents_energy_has_an_unknown_lineage_total() -> None:
    _first, second = systemic_lineage()
    bare = second.model_copy(update={"energy": None, "obligations": None})
    record = with_energy_and_obligations(bare, BlockInputs())
    assert record.energy is not None and record.energy.kwh is not None and record.energy.lineage_kwh is None


def test_systemic_crossing_in_the_child_states_the_due_date_and_outside_eu_adds_art_54() -> None:
    first, second = systemic_lineage()
    assert first.obligations is not None and not first.obligations.triggered
    assert second.obligations is not None and second.obligations.crossed_in_job == "ft-405b-2"
    assert second.obligations.notification_due_at is not None
    start = second.job.start_time
    assert start is not None and start < second.obligations.crossed_at < second.job.end_time  # type: ignore[operator]
    outside = with_energy_and_obligations(
        second.model_copy(update={"energy": None, "obligations": None}),
        BlockInputs(established_outside_eu=True, parent_lineage_kwh=first.energy.lineage_kwh),  # type: ignore[union-attr]
    )
    assert outside.obligations is not None
    assert "authorised_representative" in [i.obligation_id for i in outside.obligations.items]
