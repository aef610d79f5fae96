"""``report --documentation`` lists every ancestor whose compute is in the figure (issue 23): both parents of a
merge, a shared grandparent once, the parents of a record written before lineage graphs, and a job's addendum."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flopsmeter.audit.record import Lineage
from flopsmeter.compliance.documentation import build, render_markdown
from flopsmeter.compliance.query import Preset, preset_sql, run_duckdb
from flopsmeter.ports import MeteredFigures
from flopsmeter.service.classifier import classify_and_record
from flopsmeter.service.dependencies import ClassifyRequest
from tests.support.fakes import END, World
from tests.support.records import make_record, write_mirror

OUT = "s3://ml-artifacts-123/out"


def _job(world: World, name: str, flops: float, end, reads=()):  # type: ignore[no-untyped-def]
    description = world.jobs.add(name, end=end, hours=2.0)
    description["OutputDataConfig"] = {"S3OutputPath": OUT}
    description["ModelArtifacts"] = {"S3ModelArtifacts": f"{OUT}/{name}/output/model.tar.gz"}
    description["InputDataConfig"] = [
        {"ChannelName": f"c{i}", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}}}
        for i, uri in enumerate(f"{OUT}/{r}/output/model.tar.gz" for r in reads)
    ]
    world.trail.add(name)
    world.meter.figures[name] = MeteredFigures(cumulative_flops=flops)


def _mirror(world: World, root):  # type: ignore[no-untyped-def]
    for key, body in world.store.objects.items():
        if key.startswith("records/"):
            (root / key).parent.mkdir(parents=True, exist_ok=True)
            (root / key).write_bytes(body)
    return root


def _run(world: World, *names: str) -> None:
    for name in names:
        classify_and_record(ClassifyRequest(name, f"evt-{name}"), world.deps, world.config)


def test_every_ancestor_of_a_diamond_merge_is_in_the_table_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    world = World()
    _job(world, "sft", 2e22, END - timedelta(days=3))
    _job(world, "dpo-a", 5e21, END - timedelta(days=2), reads=("sft",))
    _job(world, "dpo-b", 6e21, END - timedelta(days=2), reads=("sft",))
    _job(world, "merge", 1e19, END, reads=("dpo-a", "dpo-b"))
    _run(world, "sft", "dpo-a", "dpo-b", "merge")
    doc = build(_mirror(world, tmp_path), "merge")
    assert sorted(j.record.job.name for j in doc.jobs) == ["dpo-a", "dpo-b", "merge", "sft"]
    assert doc.jobs[-1].record.job.name == "merge" and not doc.missing
    text = render_markdown(doc)
    for name in ("sft", "dpo-a", "dpo-b"):
        assert text.count(f"| `{name}` |") == 3  # compute, energy and provenance tables, once each
    assert "**3.1 × 10^22 FLOP**" in text


def test_a_record_before_graphs_lists_every_counted_parent(tmp_path) -> None:  # type: ignore[no-untyped-def]
    a, b = make_record("sft-a", flops=2e22), make_record("sft-b", flops=1.8e22)
    merge = make_record("merge", flops=3.8e22)
    lineage = {
        **merge.lineage.model_dump(),
        "parent_job": "sft-a",
        "chain": ["sft-a"],  # before issue 23 the chain named the first parent only
        "parents": [
            {"job": "sft-a", "source": "declared", "status": "resolved"},
            {"job": "sft-b", "source": "declared", "status": "resolved"},
        ],
        "ancestors": None,
    }
    merge = merge.model_copy(update={"lineage": Lineage.model_validate(lineage)}).sealed()
    doc = build(write_mirror(tmp_path, [a, b, merge]), "merge")
    assert [j.record.job.name for j in doc.jobs] == ["sft-a", "sft-b", "merge"]


def test_a_re_assessed_job_is_drafted_from_its_addendum(tmp_path) -> None:  # type: ignore[no-untyped-def]
    world = World()
    _job(world, "sft", 2e22, END - timedelta(days=1))
    _job(world, "dpo", 1.5e22, END, reads=("sft",))
    _run(world, "dpo", "sft")  # the parent's event arrives after the child's
    doc = build(_mirror(world, tmp_path), "dpo")
    assert [j.record.job.name for j in doc.jobs] == ["sft", "dpo"]
    assert doc.record.addendum is not None and doc.record.lineage.cumulative_flops == pytest.approx(3.5e22)
    assert any("re-assessed after a parent was recorded late" in n for n in doc.notes)


def test_a_query_listing_says_which_row_re_assesses_which_record(tmp_path) -> None:  # type: ignore[no-untyped-def]
    world = World()
    _job(world, "sft", 2e22, END - timedelta(days=1))
    _job(world, "dpo", 1.5e22, END, reads=("sft",))
    _run(world, "dpo", "sft")  # the parent's event arrives after the child's: the child's record gets an addendum
    result = run_duckdb(_mirror(world, tmp_path), preset_sql(Preset(job="dpo")), cache=False)
    rows = [dict(zip(result.columns, row, strict=True)) for row in result.rows]

    original = next(r for r in rows if r["re_assesses"] is None)
    addendum = next(r for r in rows if r["re_assesses"] is not None)
    assert len(rows) == 2 and addendum["re_assesses"].endswith("/dpo.json")
    assert addendum["cumulative_flops"] == pytest.approx(3.5e22) and original["cumulative_flops"] < 3.5e22


def test_the_period_report_counts_a_re_assessed_job_once_by_its_addendum(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from flopsmeter.compliance.report import collect, summary

    world = World()
    _job(world, "sft", 2e22, END - timedelta(days=1))
    _job(world, "dpo", 1.5e22, END, reads=("sft",))
    _run(world, "dpo", "sft")  # dpo alone: 1.5e22 (below 3.3e22); with its late parent: 3.5e22 (exceeds)
    jobs, errors = collect(_mirror(world, tmp_path))
    stats = summary(jobs)

    assert not errors and stats["records"] == 3 and stats["re_assessed"] == 1
    assert stats["jobs"] == 2 and stats["outcomes"] == {"exceeds": 1, "approaching": 0, "below": 1}
    assert stats["total_flops"] == pytest.approx(2e22 + 1.5e22)  # each job's own compute once
