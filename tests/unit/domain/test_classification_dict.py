"""The JSON shape of a policy result, shared by the CLI, the meter's file and the audit record."""

from __future__ import annotations

from flopsmeter.audit.record import PolicyClassification
from flopsmeter.domain.classification import classify


def test_policy_result_as_dict_is_plain_json_and_round_trips_into_the_record_model():
    result = classify(5e23, 1.5e24)
    rows = [r.as_dict() for r in result.results]
    assert rows[0] == {
        "policy": "aws-30pct-2026",
        "scenario": "relative",
        "threshold": 4.5e23,
        "ratio": 5e23 / 4.5e23,
        "outcome": "exceeds",
        "basis": result.results[0].basis,
    }
    assert all(type(v) in (str, float) for row in rows for v in row.values())
    assert [PolicyClassification.from_result(r).model_dump() for r in result.results] == rows
