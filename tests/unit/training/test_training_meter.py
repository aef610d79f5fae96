"""The plain-PyTorch meter: counts, FLOPs from the domain formulas, sync schedule, guard, end states."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from flopsmeter.domain.flops import flops_per_token  # noqa: E402
from flopsmeter.domain.shape import ModelShape  # noqa: E402
from flopsmeter.training.environment import read_job_environment  # noqa: E402
from flopsmeter.training.meter import FlopsMeter  # noqa: E402
from flopsmeter.training.tokens import TokenCounter  # noqa: E402
from tests.support.meters import EXACT  # noqa: E402
from tests.support.tiny_models import batches, build, llama_config  # noqa: E402

pytestmark = pytest.mark.torch
REPO = Path(__file__).resolve().parents[3]
SEQ = 32


@pytest.fixture(scope="module")
def model():
    return build(llama_config())


def _meter(tmp_path, model, **kwargs) -> FlopsMeter:
    env = read_job_environment({}, output_dir=tmp_path, resource_config_path=str(tmp_path / "none.json"))
    kwargs.setdefault("stdout", False)
    return FlopsMeter(model, environment=env, handle_signals=False, **kwargs)


def _train(model, meter: FlopsMeter, data, *, stop=True) -> int:
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    done = 0
    for batch in data:
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        done += 1
        if meter.step(batch).stop and stop:
            break
    return done


def test_observe_reads_no_tensor_values_on_the_host(monkeypatch) -> None:
    counter = TokenCounter()
    data = batches(3, pad_from=10)

    def forbidden(*args, **kwargs):
        raise AssertionError("host synchronisation during a micro-step")

    for name in ("item", "tolist", "__bool__", "__int__", "__float__", "cpu", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, forbidden)
    for batch in data:
        counter.observe_batch(batch)
    monkeypatch.undo()
    delta = counter.take()
    assert (delta.tokens, delta.positions, delta.micro_steps) == (3 * 4 * SEQ, 3 * 4 * SEQ * SEQ, 3)
    assert int(delta.non_padding_device) == 3 * (4 * SEQ - (SEQ - 10))


def test_inputs_embeds_and_4d_masks_are_counted_from_shapes() -> None:
    counter = TokenCounter()
    counter.observe(None, torch.ones(2, 1, 8, 8), torch.zeros(2, 8, 16))
    delta = counter.take()
    assert (delta.tokens, delta.non_padding_host, delta.non_padding_device) == (16, 16, None)


def test_meter_total_equals_the_domain_formula_for_the_tokens_seen(tmp_path, model) -> None:
    meter = _meter(tmp_path, model, emit_every_s=0).start()
    _train(model, meter, batches(3, pad_from=20))
    meter.close()
    per_token = flops_per_token(ModelShape.from_hf_config(model.config.to_dict()), SEQ).total
    t = meter.totals
    assert (t.steps, t.tokens, t.non_padding_tokens) == (3, 3 * 4 * SEQ, 3 * (4 * SEQ - (SEQ - 20)))
    assert t.flops == pytest.approx(per_token * 3 * 4 * SEQ, rel=1e-12)
    doc = json.loads((tmp_path / "flops_meter.json").read_text())
    assert doc["status"] == "completed" and doc["flops"] == pytest.approx(t.flops)
    assert doc["model"]["fine_tuning"]["method"] == "full"
    assert doc["classification"]["primary_policy"] == "aws-30pct-2026"


def test_sync_schedule_follows_the_emission_interval(tmp_path, model) -> None:
    now = [0.0]
    meter = _meter(tmp_path, model, emit_every_s=10, clock=lambda: now[0]).start()
    synced = []
    for step in range(1, 31):
        now[0] += 1.0  # one second per step
        meter.observe(batches(1)[0])
        if meter.step().synced:
            synced.append(step)
    meter.close()
    assert synced == [1, 11, 21]


def test_guard_stops_a_plain_loop_before_the_budget_is_crossed(tmp_path, model) -> None:
    per_step = flops_per_token(ModelShape.from_hf_config(model.config.to_dict()), SEQ).total * 4 * SEQ
    budget = 3.5 * per_step  # eu-guideline: threshold = pretrain / 3
    meter = _meter(tmp_path, model, emit_every_s=3600, stop_at="threshold", policy="eu-guideline-2025-07",
                   pretrain_flops=3 * budget).start()  # fmt: skip
    done = _train(model, meter, batches(10))
    meter.close()
    assert done == 3 and meter.totals.flops <= budget
    doc = json.loads((tmp_path / "flops_meter.json").read_text())
    assert doc["status"] == "stopped_by_guard" and "threshold limit" in doc["stop_reason"]
    assert doc["guard"]["limit"] == pytest.approx(budget)


def test_measured_mode_records_flop_counter_next_to_the_formula(tmp_path, model) -> None:
    meter = _meter(tmp_path, model, emit_every_s=3600, measure_steps=1, calibrate=True).start()
    for batch in batches(2, pad_from=16):
        with meter.measuring():
            model(**batch).loss.backward()
        meter.step(batch)
    meter.close()
    (window,) = meter.counting.probe.windows  # the batch is counted in step(): the window is settled there
    assert window.ratio == pytest.approx(1.0, abs=EXACT)  # eager attention: every matmul is seen
    doc = json.loads((tmp_path / "flops_meter.json").read_text())
    assert doc["measured"]["windows"] == 1
    assert doc["measured"]["measured_to_closed_form"] == pytest.approx(1.0, abs=EXACT)
    assert doc["measured_excess_flops"] <= EXACT * doc["flops"]


def test_state_dict_round_trip_continues_the_totals(tmp_path, model) -> None:
    first = _meter(tmp_path, model, emit_every_s=0).start()
    _train(model, first, batches(2))
    first.close()
    second = _meter(tmp_path, model, emit_every_s=0)
    second.load_state_dict(json.loads(json.dumps(first.state_dict())))
    second.start()
    _train(model, second, batches(2, seed=1))
    second.close()
    assert second.totals.steps == 4 and second.totals.tokens == 4 * 4 * SEQ
    assert second.totals.flops == pytest.approx(2 * first.totals.flops)


def test_exception_in_the_loop_leaves_a_failed_file(tmp_path, model) -> None:
    with pytest.raises(RuntimeError), _meter(tmp_path, model, emit_every_s=3600) as meter:
        _train(model, meter, batches(2))
        raise RuntimeError("out of memory")
    doc = json.loads((tmp_path / "flops_meter.json").read_text())
    assert doc["status"] == "failed" and "out of memory" in doc["stop_reason"]
    assert doc["tokens"] == 2 * 4 * SEQ  # the unsynced second step is included


_CHILD = """
import os, signal, sys, time
sys.path.insert(0, {repo!r})
import torch
from flopsmeter.domain.shape import ModelShape
from flopsmeter.training.meter import FlopsMeter
shape = ModelShape(hidden_size=64, num_layers=2, num_attention_heads=4, num_key_value_heads=4, head_dim=16,
                   intermediate_size=128, vocab_size=256)
meter = FlopsMeter(shape=shape, output_dir={out!r}, emit_every_s=3600, stdout=False, cloudwatch=False).start()
for _ in range(3):
    meter.step({{"input_ids": torch.zeros(4, 32, dtype=torch.long)}})
{ending}
"""


def _run_child(tmp_path, ending: str) -> tuple[int, dict]:
    code = _CHILD.format(repo=str(REPO), out=str(tmp_path), ending=textwrap.dedent(ending))
    env = {k: v for k, v in os.environ.items() if k not in {"TRAINING_JOB_NAME", "SM_TRAINING_ENV"}}
    proc = subprocess.run([sys.executable, "-c", code], env=env, timeout=120, capture_output=True, text=True)
    return proc.returncode, json.loads((tmp_path / "flops_meter.json").read_text())


def test_sigterm_writes_an_interrupted_file_and_still_terminates(tmp_path) -> None:
    rc, doc = _run_child(tmp_path, "os.kill(os.getpid(), signal.SIGTERM)\ntime.sleep(30)\n")
    assert rc == -signal.SIGTERM
    assert doc["status"] == "interrupted" and doc["totals"]["steps"] == 3 and doc["tokens"] == 3 * 4 * SEQ


def test_exit_without_close_writes_an_incomplete_file(tmp_path) -> None:
    rc, doc = _run_child(tmp_path, "sys.exit(3)\n")
    assert rc == 3
    assert doc["status"] == "incomplete" and doc["totals"]["steps"] == 3
