"""Distributed aggregation: two real processes (torch.distributed, gloo backend on CPU, file rendezvous).

Each rank counts its own batches (different sequence lengths and padding per rank); at emission points
one all-reduce sums them and rank 0 alone writes the file. The guard must stop every rank at the same step,
otherwise the next collective would hang.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
mp = pytest.importorskip("torch.multiprocessing")

from flopsmeter.domain.flops import flops_per_token  # noqa: E402
from flopsmeter.domain.shape import ModelShape  # noqa: E402

pytestmark = pytest.mark.torch
REPO = Path(__file__).resolve().parents[2]
SHAPE = {"hidden_size": 64, "num_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4, "head_dim": 16,
             "intermediate_size": 128, "vocab_size": 256}  # fmt: skip
SEQ = {0: 32, 1: 48}  # each rank pads to its own length
BATCH = 4


def _run(rank: int, out: Path, steps: int, stop_budget: float | None) -> dict:
    from flopsmeter.training.environment import read_job_environment
    from flopsmeter.training.meter import FlopsMeter

    out.mkdir(exist_ok=True)
    env = read_job_environment({}, output_dir=out, resource_config_path=f"{out}/none.json")
    guard = {} if stop_budget is None else {"stop_at": "threshold", "policy": "eu-guideline-2025-07",
                                            "pretrain_flops": 3 * stop_budget}  # fmt: skip
    meter = FlopsMeter(shape=ModelShape(**SHAPE), environment=env, emit_every_s=0, stdout=False,
                       cloudwatch=False, handle_signals=False, **guard).start()  # fmt: skip
    done = 0
    for _ in range(steps):
        ids = torch.zeros(BATCH, SEQ[rank], dtype=torch.long)
        mask = torch.ones_like(ids)
        mask[0, 8:] = 0 if rank == 1 else 1
        done += 1
        if meter.step({"input_ids": ids, "attention_mask": mask}).stop:
            break
    meter.close()
    return {"done": done, "tokens": meter.totals.tokens}


def _worker(rank: int, tmp: str, budget: float) -> None:
    sys.path.insert(0, str(REPO))
    dist.init_process_group("gloo", init_method=f"file://{tmp}/store", rank=rank, world_size=2)
    try:
        plain = _run(rank, Path(tmp, "plain"), 3, None)
        guarded = _run(rank, Path(tmp, "guarded"), 10, budget)
        Path(tmp, f"rank{rank}.json").write_text(json.dumps({"plain": plain, "guarded": guarded}))
    finally:
        dist.destroy_process_group()


def _step_flops(rank: int) -> float:
    return flops_per_token(ModelShape(**SHAPE), SEQ[rank]).total * BATCH * SEQ[rank]


BUDGET = 2.5 * (_step_flops(0) + _step_flops(1))


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    mp.start_processes(_worker, args=(str(tmp), BUDGET), nprocs=2, join=True, start_method="spawn")
    return tmp, {r: json.loads((tmp / f"rank{r}.json").read_text()) for r in (0, 1)}


def test_two_ranks_are_summed_and_only_rank_zero_writes(two_ranks) -> None:
    tmp, ranks = two_ranks
    doc = json.loads((tmp / "plain" / "flops_meter.json").read_text())
    expected_tokens = 3 * BATCH * (SEQ[0] + SEQ[1])
    assert doc["world_size"] == 2 and doc["tokens"] == expected_tokens
    assert doc["non_padding_tokens"] == expected_tokens - 3 * (SEQ[1] - 8)
    assert doc["flops"] == pytest.approx(3 * (_step_flops(0) + _step_flops(1)), rel=1e-12)
    assert ranks[0]["plain"]["tokens"] == ranks[1]["plain"]["tokens"] == expected_tokens  # both hold global totals
    assert [p.name for p in (tmp / "plain").iterdir()] == ["flops_meter.json"]


def test_guard_stops_every_rank_at_the_same_step(two_ranks) -> None:
    tmp, ranks = two_ranks
    assert ranks[0]["guarded"]["done"] == ranks[1]["guarded"]["done"] == 2
    doc = json.loads((tmp / "guarded" / "flops_meter.json").read_text())
    assert doc["status"] == "stopped_by_guard" and doc["flops"] <= BUDGET
