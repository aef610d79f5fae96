"""Lineage as a graph through the classifier service (issue 23): merges, diamonds, cycles, input prefixes that
contain recorded outputs, and a parent recorded after its child (re-assessed by an addendum, never overwritten)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flopsmeter.audit.keys import addenda_prefix
from flopsmeter.errors import ChildRecordPending
from flopsmeter.ports import MeteredFigures
from flopsmeter.service.classifier import classify_and_record
from flopsmeter.service.dependencies import ClassifyRequest
from tests.support.fakes import END

BUCKET = "s3://ml-artifacts-123"
DAY = timedelta(days=1)


def run(world, name):
    return classify_and_record(ClassifyRequest(name, f"evt-{name}"), world.deps, world.config)


def job(world, name, flops, *, end=END, hours=2.0, reads=(), **describe):
    """A terminal metered job; ``reads``: S3 prefixes it gets as input channels."""
    description = world.jobs.add(
        name, end=end, hours=hours, environment=describe.pop("environment", None), tags=describe.pop("tags", None)
    )
    description["OutputDataConfig"] = {"S3OutputPath": describe.pop("output", f"{BUCKET}/out")}
    root = description["OutputDataConfig"]["S3OutputPath"]
    description["ModelArtifacts"] = {"S3ModelArtifacts": f"{root}/{name}/output/model.tar.gz"}
    if reads:
        description["InputDataConfig"] = [
            {"ChannelName": f"c{i}", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}}}
            for i, uri in enumerate(reads)
        ]
    description.update(describe)
    world.trail.add(name)
    world.meter.figures[name] = MeteredFigures(cumulative_flops=flops)
    return description


def model_of(name, root=f"{BUCKET}/out"):
    return f"{root}/{name}/output/model.tar.gz"


def recorded(world, name, flops, **kwargs):
    job(world, name, flops, **kwargs)
    return run(world, name).record


def test_a_merge_of_two_declared_parents_sums_both(world):
    recorded(world, "sft-a", 2.0e22, end=END - DAY)
    recorded(world, "sft-b", 1.8e22, end=END - DAY)
    merge = recorded(world, "merge", 1e19, tags={"flopsmeter:parent-job": "sft-a,sft-b"})
    assert merge.lineage.cumulative_flops == pytest.approx(3.8e22 + 1e19)  # not 2.0e22 (-48 %)
    assert {(p.job, p.status) for p in merge.lineage.parents} == {("sft-a", "resolved"), ("sft-b", "resolved")}
    assert merge.lineage.status == "complete" and merge.outcome == "exceeds"
    assert [a.job for a in merge.lineage.ancestors] == ["sft-a", "sft-b"]
    assert sum(a.flops for a in merge.lineage.ancestors) + merge.lineage.own_flops == merge.lineage.cumulative_flops


def test_a_merge_read_from_two_input_channels_sums_both(world):
    recorded(world, "sft-a", 2.0e22, end=END - DAY)
    recorded(world, "sft-b", 1.8e22, end=END - DAY)
    merge = recorded(world, "merge", 1e19, reads=(model_of("sft-a"), model_of("sft-b")))
    assert merge.lineage.cumulative_flops == pytest.approx(3.8e22 + 1e19)


def test_a_diamond_counts_the_shared_grandparent_once(world):
    recorded(world, "sft", 2.0e22, end=END - 3 * DAY)
    recorded(world, "dpo-a", 5e21, end=END - 2 * DAY, reads=(model_of("sft"),))
    recorded(world, "dpo-b", 6e21, end=END - 2 * DAY, reads=(model_of("sft"),))
    merge = recorded(world, "merge", 1e19, reads=(model_of("dpo-a"), model_of("dpo-b")))
    assert merge.lineage.cumulative_flops == pytest.approx(2e22 + 5e21 + 6e21 + 1e19)  # sft once, not twice
    assert sorted(a.job for a in merge.lineage.ancestors) == ["dpo-a", "dpo-b", "sft"]
    assert set(merge.lineage.chain) == {"sft", "dpo-a", "dpo-b"}


def test_two_jobs_that_declare_each_other_are_refused_as_a_cycle(world):
    world.config = world.config.__class__(parent_max_wait_seconds=0, cloudtrail_max_wait_seconds=3600)
    job(world, "pong", 2e21, tags={"flopsmeter:parent-job": "ping"})
    first = recorded(world, "ping", 1e21, end=END - DAY, tags={"flopsmeter:parent-job": "pong"})
    assert first.lineage.parents[0].status == "ceiling"  # pong had no record yet: its ceiling stands in
    pong = run(world, "pong").record
    assert any("lineage cycle refused: pong is among the ancestors of its parent ping" in w for w in pong.warnings)
    assert pong.lineage.cumulative_flops == pytest.approx(2e21 + 1e21)  # each job once, its own compute as its own
    assert pong.outcome != "below"  # ping's lineage was incomplete (a ceiling stood in), so pong's is too


def test_a_job_that_names_itself_is_a_refused_cycle(world):
    record = recorded(world, "selfie", 1e20, tags={"flopsmeter:parent-job": "selfie"})
    assert "lineage cycle refused: the job names itself" in record.lineage.incomplete_reasons[0]
    assert record.outcome == "approaching"


def test_an_input_prefix_that_contains_a_recorded_output_links_to_it(world):
    recorded(world, "sft", 2.0e22, end=END - DAY, output=f"{BUCKET}/models/llama")
    record = recorded(world, "cont", 1.5e22, reads=(f"{BUCKET}/models/",))
    ((link,),) = [record.lineage.parents]
    assert (link.job, link.location, link.status) == ("sft", f"{BUCKET}/models", "resolved")
    assert record.lineage.cumulative_flops == pytest.approx(3.5e22) and record.outcome == "exceeds"


def test_an_input_prefix_that_contains_several_outputs_counts_all_and_says_it_could_not_decide(world):
    for name in ("run-a", "run-b"):
        recorded(world, name, 1.0e22, end=END - DAY, output=f"{BUCKET}/models")
    record = recorded(world, "cont", 1e21, reads=(f"{BUCKET}/models",))
    assert {p.job for p in record.lineage.parents} == {"run-a", "run-b"}
    assert record.lineage.cumulative_flops == pytest.approx(2.1e22)
    assert any("contains the outputs of 2 recorded jobs (run-a, run-b): the tool cannot decide" in w
               for w in record.warnings)  # fmt: skip


def test_an_input_prefix_with_too_many_outputs_is_undecided_and_never_below(world):
    for i in range(9):
        recorded(world, f"sweep-{i}", 1e19, end=END - DAY, output=f"{BUCKET}/sweep")
    record = recorded(world, "pick", 1e19, reads=(f"{BUCKET}/sweep",))
    assert record.lineage.status == "incomplete" and record.outcome == "approaching"
    assert "contains the outputs of 9 recorded jobs" in record.lineage.incomplete_reasons[0]
    assert "could not decide" in record.lineage.incomplete_reasons[0]


def test_a_hyperparameter_prefix_above_an_output_is_not_a_parent(world):
    recorded(world, "sft", 2.0e22, end=END - DAY)
    record = recorded(world, "other", 1e19, HyperParameters={"data": f"{BUCKET}/out"})
    assert record.lineage.status == "none"  # a script reads what it picks from a path; a channel gets it all


def late_parent_then_child(world):
    """The parent ended first but its event is late: the child is classified first, without it."""
    job(world, "sft", 2.0e22, end=END - DAY)
    child = recorded(world, "dpo", 1.5e22, reads=(model_of("sft"),))
    assert child.outcome == "below" and child.lineage.status == "none"
    return child


def test_a_parent_recorded_after_its_child_re_assesses_the_child_by_an_addendum_and_alerts(world):
    child = late_parent_then_child(world)
    original_key = next(k for k, r in world.store.records().items() if r.job.name == "dpo")
    original_bytes = world.store.objects[original_key]
    world.publisher.alerts.clear()
    run(world, "sft")
    (addendum_key,) = [k for k in world.store.objects if k.startswith(addenda_prefix(original_key))]
    addendum = world.store.get_record(addendum_key)
    assert world.store.objects[original_key] == original_bytes  # never overwritten
    assert addendum.addendum.of_record_key == original_key and addendum.addendum.of_record_sha256 == child.sha256
    assert addendum.addendum.late_parents == ["sft"] and addendum.record_id != child.record_id
    assert addendum.lineage.cumulative_flops == pytest.approx(3.5e22) and addendum.outcome == "exceeds"
    assert addendum.lineage.parents[0].job == "sft" and addendum.obligations.triggered
    ((subject, message, attributes),) = [a for a in world.publisher.alerts if "dpo" in a[0]]
    assert "dpo" in subject and attributes["outcome"] == "exceeds"
    assert "re-assessed: sft was recorded after this job" in message and addendum_key in message
    run(world, "sft")  # a redelivery of the parent's event writes nothing more
    assert [k for k in world.store.objects if k.startswith(addenda_prefix(original_key))] == [addendum_key]


def test_a_second_late_parent_builds_on_the_first_addendum(world):
    job(world, "sft-a", 2.0e22, end=END - DAY)
    job(world, "sft-b", 1.0e22, end=END - DAY)
    recorded(world, "merge", 1e19, reads=(model_of("sft-a"), model_of("sft-b")))
    run(world, "sft-a")
    run(world, "sft-b")
    records = [r for r in world.store.records().values() if r.job.name == "merge"]
    latest = max(records, key=lambda r: r.lineage.cumulative_flops)
    assert latest.lineage.cumulative_flops == pytest.approx(3.0e22 + 1e19)
    assert latest.addendum.late_parents == ["sft-a", "sft-b"] and len(latest.addendum.builds_on) == 1


def test_a_grandchild_reads_its_parent_s_current_assessment(world):
    late_parent_then_child(world)
    run(world, "sft")
    grandchild = recorded(world, "kto", 1e19, end=END + DAY, reads=(model_of("dpo"),))
    assert grandchild.lineage.cumulative_flops == pytest.approx(3.5e22 + 1e19)  # the addendum, not the original
    assert sorted(a.job for a in grandchild.lineage.ancestors) == ["dpo", "sft"]


def test_a_reader_still_being_classified_makes_the_parent_retry(world):
    job(world, "sft", 2.0e22, end=END - DAY)
    job(world, "dpo", 1.5e22, reads=(model_of("sft"),))
    from flopsmeter.service.facts import facts_from_description
    from flopsmeter.service.lineage_index import write_index

    facts = facts_from_description(world.jobs.describe("dpo"), {})
    write_index(facts, facts.lineage_io, world.store)  # dpo's reads are indexed; its record is not written yet
    with pytest.raises(ChildRecordPending):
        run(world, "sft")
    run(world, "dpo")  # dpo finds sft now (its record exists): no addendum needed
    assert run(world, "sft").status == "duplicate"
    dpo = [r for r in world.store.records().values() if r.job.name == "dpo"]
    assert len(dpo) == 1 and dpo[0].lineage.cumulative_flops == pytest.approx(3.5e22)


def test_a_declared_parent_recorded_after_the_wait_re_assesses_the_child_with_its_ancestors(world):
    recorded(world, "base-sft", 3.5e22, end=END - 2 * DAY)
    job(world, "sft", 1e21, end=END - DAY, tags={"flopsmeter:parent-job": "base-sft"})  # its event is late
    world.now = END + timedelta(hours=2)  # past the wait: sft's ceiling stands in, its ancestors unknown
    child = recorded(world, "dpo", 1e19, tags={"flopsmeter:parent-job": "sft"})
    assert child.lineage.parents[0].status == "ceiling" and child.lineage.status == "incomplete"
    assert child.outcome == "approaching"  # sft's ceiling (8 x 312e12 x 2 h) is far below; base-sft was missed
    run(world, "sft")
    (latest,) = [r for r in world.store.records().values() if r.job.name == "dpo" and r.addendum]
    assert latest.outcome == "exceeds" and latest.addendum.late_parents == ["sft"]
    assert {a.job for a in latest.lineage.ancestors} == {"sft", "base-sft"}
