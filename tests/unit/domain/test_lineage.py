"""The lineage rules: locations, prefixes, how the cumulative figure is made up, the incomplete-lineage rule."""

from __future__ import annotations

import pytest

from flopsmeter.domain.classification import Outcome, classify
from flopsmeter.domain.lineage import (
    MAX_PREFIX_DEPTH,
    LineageStatus,
    ParentFigure,
    apply_lineage_rule,
    lineage_flops,
    normalise_s3_uri,
    prefix_candidates,
    s3_uris_in,
)

DEFAULT = 3.3e22  # aws-30pct-2026 threshold for an unknown base


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("s3://Bucket-1/out/job/output/model.tar.gz", "s3://bucket-1/out/job/output/model.tar.gz"),
        ("S3://bucket-1/ckpt/", "s3://bucket-1/ckpt"),
        ('"s3://bucket-1/ckpt//"', "s3://bucket-1/ckpt"),
        ("s3://bucket-1", "s3://bucket-1"),
        ("s3://bucket-1/", "s3://bucket-1"),
        ("/opt/ml/input/data/model", None),
        ("https://bucket-1.s3.amazonaws.com/x", None),
        ("s3://", None),
        ("s3://a/x", None),  # bucket names have at least 3 characters
        ("s3://bucket-1/" + "k" * 2000, None),
    ],
)
def test_normalise_s3_uri(raw, expected):
    assert normalise_s3_uri(raw) == expected


def test_prefix_candidates_are_longest_first_down_to_the_bucket():
    assert prefix_candidates("s3://b12/out/job/output/model.tar.gz") == [
        "s3://b12/out/job/output/model.tar.gz",
        "s3://b12/out/job/output",
        "s3://b12/out/job",
        "s3://b12/out",
        "s3://b12",
    ]
    assert prefix_candidates("not a uri") == []


def test_prefix_candidates_are_bounded():
    deep = "s3://b12/" + "/".join(f"d{i}" for i in range(40))
    candidates = prefix_candidates(deep)
    assert len(candidates) == MAX_PREFIX_DEPTH
    assert candidates[0] == normalise_s3_uri(deep)


def test_s3_uris_in_text_values():
    assert s3_uris_in('"s3://b12/models/m1/"') == ["s3://b12/models/m1"]
    assert s3_uris_in('["s3://b12/a", "s3://b12/b", "s3://b12/a/"]') == ["s3://b12/a", "s3://b12/b"]
    assert s3_uris_in("meta-llama/Llama-3.1-8B") == []


def test_no_parent_is_own_compute():
    figure = lineage_flops(1e21, [])
    assert (figure.cumulative_flops, figure.parent_flops, figure.status) == (1e21, 0.0, LineageStatus.NONE)


def test_resolved_parents_add_up():
    figure = lineage_flops(1e21, [ParentFigure("p1", 2e21), ParentFigure("p2", 3e21)])
    assert figure.status is LineageStatus.COMPLETE
    assert figure.cumulative_flops == pytest.approx(6e21)


@pytest.mark.parametrize("parent", [ParentFigure("gone", None), ParentFigure("ceiling", 2e21, complete=False)])
def test_a_missing_parent_makes_the_lineage_incomplete_without_counting_it_as_zero(parent):
    figure = lineage_flops(1e21, [ParentFigure("p1", 2e21), parent])
    assert figure.status is LineageStatus.INCOMPLETE
    assert figure.cumulative_flops >= 3e21  # what could be read is still counted


def test_a_declaration_stands_in_for_the_missing_part_never_below_what_was_read():
    parents = [ParentFigure("p1", 2e21), ParentFigure("gone", None)]
    assert lineage_flops(1e21, parents, declared_parent_flops=5e21).cumulative_flops == pytest.approx(6e21)
    low = lineage_flops(1e21, parents, declared_parent_flops=1e20)
    assert low.status is LineageStatus.DECLARED
    assert low.cumulative_flops == pytest.approx(3e21)


def test_a_declaration_is_not_used_when_every_parent_was_read():
    figure = lineage_flops(1e21, [ParentFigure("p1", 2e21)], declared_parent_flops=9e22)
    assert figure.status is LineageStatus.COMPLETE
    assert figure.cumulative_flops == pytest.approx(3e21)


def _outcomes(flops, status):
    classification = apply_lineage_rule(classify(flops, None), status, ["parent job gone does not exist"])
    return {r.policy: r.outcome for r in classification.results}, classification


def test_incomplete_lineage_is_at_least_approaching():
    outcomes, classification = _outcomes(1e20, LineageStatus.INCOMPLETE)
    assert set(outcomes.values()) == {Outcome.APPROACHING}
    assert all("lineage incomplete (parent job gone does not exist)" in r.basis for r in classification.results)
    assert any("flopsmeter:parent-flops" in w for w in classification.warnings)
    assert classification.primary.ratio == pytest.approx(1e20 / DEFAULT)  # the ratio stays what was read


def test_incomplete_lineage_exceeds_when_what_was_read_exceeds():
    outcomes, _ = _outcomes(DEFAULT * 1.01, LineageStatus.INCOMPLETE)
    assert outcomes["aws-30pct-2026"] is Outcome.EXCEEDS


@pytest.mark.parametrize("status", [LineageStatus.NONE, LineageStatus.COMPLETE, LineageStatus.DECLARED])
def test_other_statuses_leave_the_classification_alone(status):
    before = classify(1e20, None)
    assert apply_lineage_rule(before, status) == before


def test_inputs_not_looked_up_make_the_lineage_incomplete_even_without_a_parent():
    assert lineage_flops(1e21, [], unread_inputs=True).status is LineageStatus.INCOMPLETE
    assert lineage_flops(1e21, [], 5e21, unread_inputs=True).cumulative_flops == pytest.approx(6e21)
