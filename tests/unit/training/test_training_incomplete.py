"""Totals the meter knows to be incomplete are never reported as if they were whole: flagged in the file, the
stdout lines and CloudWatch (MeterIncomplete = 1), estimated conservatively, and carried through checkpoints."""

from __future__ import annotations

import io
import json
import re

import pytest

torch = pytest.importorskip("torch")

from flopsmeter import contract  # noqa: E402
from flopsmeter.domain.flops import flops_per_token  # noqa: E402
from flopsmeter.domain.shape import ModelShape  # noqa: E402
from flopsmeter.training.distributed import World  # noqa: E402
from flopsmeter.training.emitters import METRIC_DEFINITIONS, metric_data  # noqa: E402
from flopsmeter.training.environment import read_job_environment  # noqa: E402
from flopsmeter.training.meter import FlopsMeter  # noqa: E402
from flopsmeter.training.state import Gap  # noqa: E402

pytestmark = pytest.mark.torch
SHAPE = ModelShape(hidden_size=64, num_layers=2, num_attention_heads=4, num_key_value_heads=4, head_dim=16,
                   intermediate_size=128, vocab_size=256)  # fmt: skip
SEQ, BATCH = 32, 4
PER_STEP = flops_per_token(SHAPE, SEQ).total * BATCH * SEQ


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[dict]] = []
        self.sent = self.failures = 0

    def emit(self, snap) -> None:
        self.batches.append(metric_data(snap, "job-1"))
        self.sent += 1

    def close(self, timeout_s: float = 0) -> None:
        pass

    def values(self, name: str) -> list[float]:
        return [d["Value"] for batch in self.batches for d in batch if d["MetricName"] == name]


def _meter(tmp_path, **kwargs) -> FlopsMeter:
    env = read_job_environment({}, output_dir=tmp_path, resource_config_path=str(tmp_path / "none.json"))
    kwargs.setdefault("stdout", False)
    kwargs.setdefault("cloudwatch", False)
    return FlopsMeter(shape=SHAPE, environment=env, handle_signals=False, **kwargs)


def _steps(meter: FlopsMeter, count: int, *, seq: int = SEQ) -> int:
    for done in range(1, count + 1):
        if meter.step({"input_ids": torch.zeros(BATCH, seq, dtype=torch.long)}).stop:
            return done
    return count


def test_resume_without_totals_is_flagged_and_estimated_everywhere(tmp_path) -> None:
    out, cloudwatch = io.StringIO(), Recorder()
    meter = _meter(tmp_path, emit_every_s=0, stdout=out, cloudwatch_emitter=cloudwatch)
    meter.resume_at(5)
    meter.start()
    _steps(meter, 3)
    meter.close()
    doc = json.loads((tmp_path / "flops_meter.json").read_text())
    assert doc["meter_incomplete"] is True and doc["method"] == "metered_incomplete"
    assert doc["totals"]["steps"] == 8 and doc["metered_flops"] == pytest.approx(3 * PER_STEP)
    assert doc["incomplete"]["missing_steps"] == 5
    assert doc["incomplete"]["estimated_flops"] == pytest.approx(5 * PER_STEP)
    assert doc["flops"] == pytest.approx(8 * PER_STEP)  # counted + estimated: the figure emitted everywhere
    assert (
        "without saved meter totals" in doc["incomplete"]["reasons"][0]
        and "hardware ceiling" in doc["incomplete"]["note"]
    )
    text = out.getvalue()
    assert "flopsmeter [WARNING] meter totals incomplete: resumed at step 5" in text
    lines = [line for line in text.splitlines() if line.startswith("flopsmeter: ")]
    assert len(lines) == 4 and all("meter_incomplete=1" in line and "estimated_flops=" in line for line in lines)
    flag = next(d for d in METRIC_DEFINITIONS if d["Name"] == "flopsmeter:meter_incomplete")
    assert re.findall(flag["Regex"], text) == ["1"] * 4
    assert cloudwatch.values(contract.METRIC_METER_INCOMPLETE) == [1.0] * 4  # with every emission, never cleared
    assert cloudwatch.values(contract.METRIC_CUMULATIVE_FLOPS)[-1] == pytest.approx(8 * PER_STEP)


def test_complete_totals_send_no_flag(tmp_path) -> None:
    cloudwatch = Recorder()
    meter = _meter(tmp_path, emit_every_s=0, cloudwatch_emitter=cloudwatch).start()
    _steps(meter, 2)
    meter.close()
    assert cloudwatch.sent == 3 and cloudwatch.values(contract.METRIC_METER_INCOMPLETE) == []
    assert json.loads((tmp_path / "flops_meter.json").read_text())["meter_incomplete"] is False


def test_the_estimate_grows_with_the_largest_step_seen(tmp_path) -> None:
    meter = _meter(tmp_path, emit_every_s=0)
    meter.resume_at(2)
    meter.start()
    _steps(meter, 1, seq=16)
    small = meter.estimated_flops
    _steps(meter, 1, seq=SEQ)
    assert small == pytest.approx(2 * flops_per_token(SHAPE, 16).total * BATCH * 16)
    assert meter.estimated_flops == pytest.approx(2 * PER_STEP) and meter.estimated_flops > small
    meter.close()


def test_the_gap_travels_with_the_checkpoint_and_cannot_be_cleared_by_a_resume(tmp_path) -> None:
    first = _meter(tmp_path / "a", emit_every_s=0)
    first.resume_at(4)
    first.start()
    _steps(first, 2)
    first.save_checkpoint(tmp_path / "ckpt")
    saved = json.loads((tmp_path / "ckpt" / "flops_meter_state.json").read_text())
    first.close()
    second = _meter(tmp_path / "b", emit_every_s=3600)
    assert second.load_checkpoint(tmp_path / "ckpt")
    second.resume_at(6)  # the checkpoint covers step 6: nothing new is missing
    second.start()
    second.close()
    assert saved["incomplete"]["missing_steps"] == 4
    assert second.incomplete and second.gap.missing_steps == 4
    assert second.reported_flops == pytest.approx(6 * PER_STEP)  # 2 counted + the restored estimate of 4


def test_a_checkpoint_behind_the_trainer_flags_the_steps_it_lacks(tmp_path) -> None:
    first = _meter(tmp_path / "a", emit_every_s=0).start()
    _steps(first, 3)
    first.close()
    second = _meter(tmp_path / "b", emit_every_s=0)
    second.load_state_dict(first.state_dict())
    second.resume_at(5)
    assert second.gap.missing_steps == 2 and "with meter totals for step 3 only" in second.gap.reasons[0]


def test_the_guard_counts_the_estimate(tmp_path) -> None:
    budget = 3.5 * PER_STEP  # eu-guideline policy: threshold = pretrain / 3
    guard = {"stop_at": "threshold", "policy": "eu-guideline-2025-07", "pretrain_flops": 3 * budget}
    plain = _meter(tmp_path / "a", emit_every_s=3600, **guard).start()
    resumed = _meter(tmp_path / "b", emit_every_s=3600, **guard)
    resumed.resume_at(2)
    resumed.start()
    assert (_steps(plain, 10), _steps(resumed, 10)) == (3, 1)  # 2 estimated + 1 counted: one more could cross
    plain.close()
    resumed.close()


def test_an_interruption_across_ranks_is_flagged(tmp_path) -> None:
    meter = _meter(tmp_path, emit_every_s=3600).start()
    meter.world = World(0, 2)  # rank 0 of two; no process group, so the first sync is local
    _steps(meter, 3)  # synced at step 1 only
    meter.close("interrupted", "SIGTERM", collective=False)
    doc = json.loads((tmp_path / "flops_meter.json").read_text())
    assert doc["status"] == "interrupted" and doc["meter_incomplete"] is True
    assert "estimated from rank 0 x 2 ranks" in doc["incomplete"]["reasons"][0]


def test_a_single_rank_interruption_is_complete(tmp_path) -> None:
    meter = _meter(tmp_path, emit_every_s=3600).start()
    _steps(meter, 3)
    meter.close("interrupted", "SIGTERM", collective=False)
    assert not meter.incomplete and meter.totals.flops == pytest.approx(3 * PER_STEP)


@pytest.mark.parametrize(
    "saved",
    [
        "junk",
        {"missing_steps": -1, "estimated_flops": 0.0, "reasons": ["x"]},
        {"missing_steps": 2, "estimated_flops": float("nan"), "reasons": ["x"]},
        {"missing_steps": 2, "estimated_flops": 1.0, "reasons": "x"},
        {"missing_steps": 2, "estimated_flops": 1.0, "reasons": []},
    ],
)
def test_an_unreadable_saved_gap_is_still_a_gap(saved) -> None:
    assert Gap.from_dict(saved).reasons
