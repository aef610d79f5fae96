"""A model the meter cannot describe never stops training: the job goes unmetered and says so everywhere
(unless strict=True, which raises). No FLOPs are sent, only MeterIncomplete, so the classifier uses the ceiling."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

torch = pytest.importorskip("torch")

from flopsmeter import contract  # noqa: E402
from flopsmeter.domain.errors import InvalidModelSpec  # noqa: E402
from flopsmeter.domain.shape import ModelShape  # noqa: E402
from flopsmeter.training.emitters import METRIC_DEFINITIONS, metric_data  # noqa: E402
from flopsmeter.training.environment import read_job_environment  # noqa: E402
from flopsmeter.training.meter import FlopsMeter  # noqa: E402

pytestmark = pytest.mark.torch

# A DeepSeek-V3-shaped config: multi-head latent attention is not in formula arch-v1.
MLA_CONFIG = {"model_type": "deepseek_v3", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
              "intermediate_size": 128, "vocab_size": 256, "kv_lora_rank": 16, "q_lora_rank": 32}  # fmt: skip


class TinyLM(torch.nn.Module):
    """Embedding + linear head; ``config`` is whatever the test gives it (or absent)."""

    def __init__(self, config: dict | None) -> None:
        super().__init__()
        if config is not None:
            self.config = config
        self.embed = torch.nn.Embedding(256, 16)
        self.head = torch.nn.Linear(16, 256)

    def forward(self, input_ids=None, attention_mask=None):
        return self.head(self.embed(input_ids)).float().logsumexp(-1).mean()


class Recorder:
    """Stands in for the CloudWatch emitter: keeps the datums each snapshot would send."""

    def __init__(self) -> None:
        self.batches: list[list[dict]] = []
        self.sent = self.failures = 0
        self.closed = False

    def emit(self, snap) -> None:
        self.batches.append(metric_data(snap, "job-1"))
        self.sent += 1

    def close(self, timeout_s: float = 0) -> None:
        self.closed = True

    def names(self) -> set[str]:
        return {d["MetricName"] for batch in self.batches for d in batch}


def _meter(tmp_path, model, **kwargs):
    env = read_job_environment({}, output_dir=tmp_path, resource_config_path=str(tmp_path / "none.json"))
    return FlopsMeter(model, environment=env, handle_signals=False, emit_every_s=0, **kwargs)


def _train(model, meter, steps: int) -> int:
    meter.start().attach(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)
    done = 0
    for _ in range(steps):
        model(input_ids=torch.randint(0, 256, (2, 8))).backward()
        optimizer.step()
        optimizer.zero_grad()
        done += 1
        if meter.step().stop:
            break
    meter.close()
    return done


def test_unsupported_architecture_leaves_the_job_unmetered_and_training_goes_on(tmp_path, caplog) -> None:
    out, cloudwatch, model = io.StringIO(), Recorder(), TinyLM(MLA_CONFIG)
    meter = _meter(tmp_path, model, stdout=out, cloudwatch_emitter=cloudwatch)
    with caplog.at_level(logging.ERROR, logger="flopsmeter.training"):
        assert _train(model, meter, 3) == 3
    doc = json.loads((tmp_path / "flops_meter.json").read_text())
    assert doc["status"] == "unmetered" and doc["run_status"] == "completed" and doc["meter_incomplete"] is True
    assert "InvalidModelSpec" in doc["unmetered_reason"] and "latent attention" in doc["unmetered_reason"]
    assert doc["flops"] is None and doc["steps"] == 3 and doc["emission"]["file_failures"] == 0
    assert any(r.levelno == logging.ERROR and "latent attention" in r.getMessage() for r in caplog.records)
    text = out.getvalue()
    assert "flopsmeter [ERROR] this job is NOT metered" in text and "strict=True" in text
    captured = {d["Name"] for d in METRIC_DEFINITIONS if re.search(d["Regex"], text)}
    assert captured == {"flopsmeter:meter_incomplete"}  # no FLOPs or token figure a regex could take for real
    assert cloudwatch.names() == {contract.METRIC_METER_INCOMPLETE} and cloudwatch.closed
    assert all(d["Value"] == 1.0 for batch in cloudwatch.batches for d in batch)


def test_an_unmetered_job_says_its_guard_is_off(tmp_path) -> None:
    out = io.StringIO()
    model = TinyLM(MLA_CONFIG)
    meter = _meter(tmp_path, model, stdout=out, cloudwatch=False, stop_at="threshold", pretrain_flops="1e24")
    assert _train(model, meter, 2) == 2
    assert "the stop_at='threshold' guard is OFF" in out.getvalue()
    assert (
        "the threshold guard is off: nothing is metered"
        in json.loads((tmp_path / "flops_meter.json").read_text())["warnings"]
    )


def test_strict_raises_the_reason_instead(tmp_path) -> None:
    meter = _meter(tmp_path, TinyLM(MLA_CONFIG), stdout=False, cloudwatch=False, strict=True)
    with pytest.raises(InvalidModelSpec, match="latent attention"):
        meter.start()
    assert not (tmp_path / "flops_meter.json").exists()


def test_a_model_without_a_config_is_unmetered_with_the_reason(tmp_path) -> None:
    model = TinyLM(None)
    assert _train(model, _meter(tmp_path, model, stdout=False, cloudwatch=False), 2) == 2
    doc = json.loads((tmp_path / "flops_meter.json").read_text())
    assert doc["status"] == "unmetered" and "no .config" in doc["unmetered_reason"]


def test_a_resume_after_an_unmetered_checkpoint_is_flagged(tmp_path) -> None:
    unmetered = _meter(tmp_path / "a", TinyLM(MLA_CONFIG), stdout=False, cloudwatch=False)
    _train(TinyLM(MLA_CONFIG), unmetered, 2)
    shape = ModelShape(hidden_size=64, num_layers=2, num_attention_heads=4, num_key_value_heads=4, head_dim=16,
                       intermediate_size=128, vocab_size=256)  # fmt: skip
    resumed = _meter(tmp_path / "b", None, shape=shape, stdout=False, cloudwatch=False)  # e.g. fixed by a ModelShape
    resumed.load_state_dict(json.loads(json.dumps(unmetered.state_dict())))
    resumed.resume_at(2)
    assert resumed.incomplete and resumed.gap.missing_steps == 2
    assert any("was not metered" in r for r in resumed.gap.reasons)


def test_a_failing_token_count_does_not_break_the_forward(tmp_path, monkeypatch) -> None:
    model = TinyLM(None)
    shape = ModelShape(hidden_size=16, num_layers=1, num_attention_heads=1, num_key_value_heads=1, head_dim=16,
                       intermediate_size=32, vocab_size=256)  # fmt: skip
    meter = _meter(tmp_path, None, shape=shape, stdout=False, cloudwatch=False)

    def broken(*args, **kwargs):
        raise TypeError("unexpected input")

    monkeypatch.setattr(meter.counter, "observe", broken)
    assert _train(model, meter, 2) == 2
    assert meter.incomplete and "token counting failed at step 1" in meter.gap.reasons[0]
    strict = _meter(tmp_path / "s", None, shape=shape, stdout=False, cloudwatch=False, strict=True)
    monkeypatch.setattr(strict.counter, "observe", broken)
    with pytest.raises(TypeError):
        _train(TinyLM(None), strict, 1)
