"""reevaluate keeps the incomplete-lineage rule: a stored record whose lineage is incomplete is never 'below'."""

from __future__ import annotations

from flopsmeter.audit.record import Lineage
from tests.support.records import make_record


def test_reevaluating_an_incomplete_lineage_keeps_it_at_least_approaching():
    from flopsmeter.compliance.reevaluate import reevaluate_record
    from flopsmeter.domain.thresholds import get_policy

    record = make_record(
        "orphan", flops=1e18, pretrain=None, lineage=Lineage(own_flops=1e18, cumulative_flops=1e18, status="incomplete")
    )
    assert reevaluate_record("k", record, get_policy("eu-guideline-2025-07")).outcome == "approaching"
    complete = make_record("fine", flops=1e18, pretrain=None)
    assert reevaluate_record("k", complete, get_policy("eu-guideline-2025-07")).outcome == "below"
