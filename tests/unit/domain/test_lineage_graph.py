"""Lineage as a graph: several parents add up, a shared ancestor counts once, a cycle is refused (issue 23)."""

from __future__ import annotations

import pytest

from flopsmeter.domain.classification import Outcome, classify
from flopsmeter.domain.lineage import ParentFigure, declared_parent_names, lineage_flops
from flopsmeter.domain.lineage_graph import Ancestor, AncestorBasis, ParentGraph, merge_ancestry, not_itemised, union
from flopsmeter.domain.reassessment import never_lower


def job(name: str, flops: float) -> Ancestor:
    return Ancestor(f"arn:aws:sagemaker:eu-west-1:1:training-job/{name}", flops, job=name)


BASE, LEFT, RIGHT = job("sft", 2e22), job("dpo-a", 5e21), job("dpo-b", 6e21)


def test_a_merge_of_two_parents_counts_both():
    ancestry = merge_ancestry("merge", [ParentGraph(LEFT), ParentGraph(RIGHT)])
    assert ancestry.flops == pytest.approx(1.1e22) and ancestry.jobs == ["dpo-a", "dpo-b"]


def test_a_diamond_counts_the_shared_grandparent_once():
    parents = [ParentGraph(LEFT, (BASE,)), ParentGraph(RIGHT, (BASE,))]
    ancestry = merge_ancestry("merge", parents)
    assert ancestry.flops == pytest.approx(2e22 + 5e21 + 6e21)  # not 2 x 2e22
    figures = [ParentFigure("dpo-a", 2.5e22), ParentFigure("dpo-b", 2.6e22)]
    summed = lineage_flops(1e21, figures).cumulative_flops
    counted_once = lineage_flops(1e21, figures, ancestry_flops=ancestry.flops).cumulative_flops
    assert summed == pytest.approx(5.2e22) and counted_once == pytest.approx(3.2e22)


def test_two_paths_that_disagree_keep_the_larger_figure():
    ceiling = Ancestor(BASE.node_id, 9e22, AncestorBasis.CEILING, "sft")
    ancestry = merge_ancestry("merge", [ParentGraph(LEFT, (BASE,)), ParentGraph(RIGHT, (ceiling,))])
    assert ancestry.flops == pytest.approx(9e22 + 5e21 + 6e21)


def test_a_cycle_is_refused_with_a_warning_and_the_job_is_counted_once():
    me = job("merge", 1e21)
    ancestry = merge_ancestry(me.node_id, [ParentGraph(LEFT, (me, BASE))])
    assert ancestry.flops == pytest.approx(2.5e22)  # the job itself is not among its ancestors
    (warning,) = ancestry.cycles
    assert "lineage cycle refused: merge is among the ancestors of its parent dpo-a" in warning


def test_a_record_before_graphs_counts_its_ancestors_as_one_figure():
    (rest,) = not_itemised(LEFT, 2.5e22)
    assert rest.basis is AncestorBasis.NOT_ITEMISED and rest.flops == pytest.approx(2e22)
    assert not_itemised(BASE, 2e22) == ()


def test_the_digest_and_coverage_of_a_union():
    small, large = union("x", [((BASE,), "a")]), union("x", [((BASE, LEFT), "a")])
    assert large.covers(small) and not small.covers(large)
    assert union("x", [((LEFT, BASE), "b")]).digest() == large.digest() and small.digest() != large.digest()


@pytest.mark.parametrize(
    ("text", "names"),
    [("sft-a,sft-b", ["sft-a", "sft-b"]), (" sft-a , sft-b sft-a ", ["sft-a", "sft-b"]), ("none", ["none"])],
)
def test_declared_parents_are_a_list(text, names):
    assert declared_parent_names(text) == names


def test_a_reassessment_never_lowers_an_outcome():
    recorded = classify(3.2e22, None).results  # approaching the 3.3e22 default
    lower = never_lower(classify(1e20, None), recorded)
    assert {r.outcome for r in lower.results} == {Outcome.APPROACHING}
    assert "never lowers" in lower.primary.basis
    assert never_lower(classify(4e22, None), recorded).primary.outcome is Outcome.EXCEEDS
