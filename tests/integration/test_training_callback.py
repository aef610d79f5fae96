"""Real (tiny, CPU) fine-tuning runs with FlopsMeterCallback: CloudWatch (moto), stdout lines, the file,
resume after an interruption, and the guard.

Emulated: CloudWatch is moto's in-process ``mock_aws`` (put_metric_data / get_metric_data behave as in AWS
for these calls). The SageMaker container is emulated by environment variables (TRAINING_JOB_NAME,
SM_CURRENT_INSTANCE_TYPE, FLOPSMETER_OUTPUT_DIR).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
boto3 = pytest.importorskip("boto3")
moto = pytest.importorskip("moto")

from flopsmeter import contract  # noqa: E402
from flopsmeter.domain.flops import flops_per_token  # noqa: E402
from flopsmeter.domain.shape import ModelShape  # noqa: E402
from flopsmeter.training.callback import FlopsMeterCallback  # noqa: E402
from flopsmeter.training.emitters import METRIC_DEFINITIONS  # noqa: E402
from tests.support.meters import EXACT  # noqa: E402
from tests.support.tiny_models import TokenDataset, build, llama_config  # noqa: E402

pytestmark = pytest.mark.torch
SEQ, BATCH, ACCUM = 32, 4, 2
JOB = "ft-tiny-llama-1"


@pytest.fixture
def job_env(tmp_path, monkeypatch):
    out = tmp_path / "sm-output-data"
    monkeypatch.setenv("TRAINING_JOB_NAME", JOB)
    monkeypatch.setenv("SM_CURRENT_INSTANCE_TYPE", "ml.g5.2xlarge")
    monkeypatch.setenv("FLOPSMETER_OUTPUT_DIR", str(out))
    monkeypatch.delenv("PRETRAIN_FLOPS", raising=False)
    return out


def _flops_per_step() -> float:
    """Independent expectation: the domain's per-token figure at this sequence length x tokens per step."""
    shape = ModelShape.from_hf_config(llama_config().to_dict())
    return flops_per_token(shape, SEQ).total * BATCH * ACCUM * SEQ


def _trainer(tmp_path, callbacks, *, max_steps: int, save_steps: int = 100):
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "run"), per_device_train_batch_size=BATCH, gradient_accumulation_steps=ACCUM,
        max_steps=max_steps, save_steps=save_steps, save_strategy="steps", logging_steps=1000, report_to=[],
        use_cpu=True, learning_rate=1e-3, seed=0, disable_tqdm=True, save_only_model=False,
    )  # fmt: skip
    model = build(llama_config())
    return transformers.Trainer(model=model, args=args, train_dataset=TokenDataset(128, seq=SEQ, pad_every=3),
                                callbacks=callbacks)  # fmt: skip


def _metric_max(client, name: str) -> float:
    now = datetime.now(UTC)
    result = client.get_metric_data(
        MetricDataQueries=[{"Id": "m", "MetricStat": {"Metric": {
            "Namespace": contract.METRICS_NAMESPACE, "MetricName": name,
            "Dimensions": [{"Name": contract.METRIC_DIMENSION, "Value": JOB}]}, "Period": 60, "Stat": "Maximum"}}],
        StartTime=now - timedelta(minutes=10), EndTime=now + timedelta(minutes=10),
    )  # fmt: skip
    return max(result["MetricDataResults"][0]["Values"])


def test_run_ends_with_expected_totals_in_cloudwatch_stdout_and_file(tmp_path, job_env, capsys) -> None:
    steps = 4
    with moto.mock_aws():
        trainer = _trainer(tmp_path, [FlopsMeterCallback(emit_every_s=0, measure_steps=1)], max_steps=steps)
        trainer.train()
        client = boto3.client("cloudwatch", region_name="eu-west-1")
        cloudwatch = {name: _metric_max(client, name) for name in (
            contract.METRIC_CUMULATIVE_FLOPS, contract.METRIC_CUMULATIVE_TOKENS,
            contract.METRIC_CUMULATIVE_NON_PADDING_TOKENS, contract.METRIC_CEILING_RATIO)}  # fmt: skip
    expected_flops = steps * _flops_per_step()
    expected_tokens = steps * BATCH * ACCUM * SEQ
    doc = json.loads((job_env / "flops_meter.json").read_text())
    assert doc["status"] == "completed" and doc["training_job_name"] == JOB
    assert doc["flops"] == pytest.approx(expected_flops, rel=EXACT)
    assert doc["tokens"] == expected_tokens
    assert 0 < doc["non_padding_tokens"] < expected_tokens  # every third row is half padding
    # measured mode: FlopCounterMode over the first optimizer step (both micro-batches) agrees with the formula
    assert doc["measured"]["windows"] == 1 and doc["measured"]["first"][0]["reason"] == "first steps"
    assert doc["measured"]["measured_to_closed_form"] == pytest.approx(1.0, abs=EXACT)
    assert doc["emission"] == {"cloudwatch": True, "cloudwatch_sent": steps + 1, "cloudwatch_failures": 0,
                               "cloudwatch_last_error": None, "file_failures": 0}  # fmt: skip
    assert cloudwatch[contract.METRIC_CUMULATIVE_FLOPS] == pytest.approx(expected_flops, rel=EXACT)
    assert cloudwatch[contract.METRIC_CUMULATIVE_TOKENS] == expected_tokens
    assert cloudwatch[contract.METRIC_CUMULATIVE_NON_PADDING_TOKENS] == doc["non_padding_tokens"]
    assert 0 < cloudwatch[contract.METRIC_CEILING_RATIO] < 1
    out = capsys.readouterr().out
    last = {d["Name"]: [float(v) for v in re.findall(d["Regex"], out)][-1] for d in METRIC_DEFINITIONS
            if re.search(d["Regex"], out)}  # fmt: skip
    assert "flopsmeter:measured_flops" not in last  # the measured steps agreed: nothing more on the line
    assert last["flopsmeter:cumulative_flops"] == pytest.approx(expected_flops, rel=EXACT)
    assert last["flopsmeter:tokens"] == expected_tokens
    assert last["flopsmeter:non_padding_tokens"] == doc["non_padding_tokens"]
    assert len(re.findall(METRIC_DEFINITIONS[0]["Regex"], out)) == steps + 1  # each step (interval 0) + the end


class Interrupt(transformers.TrainerCallback):
    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.at_step:
            raise KeyboardInterrupt("simulated spot interruption")


def test_totals_survive_interruption_and_resume(tmp_path, job_env) -> None:
    first = FlopsMeterCallback(emit_every_s=3600, cloudwatch=False, stdout=False)
    with pytest.raises(KeyboardInterrupt):
        _trainer(tmp_path, [first, Interrupt(at_step=5)], max_steps=6, save_steps=3).train()
    first.meter.close("interrupted", "test", collective=False)  # what the SIGTERM handler does
    assert json.loads((job_env / "flops_meter.json").read_text())["totals"]["steps"] == 5
    checkpoint = tmp_path / "run" / "checkpoint-3"
    saved = json.loads((checkpoint / "trainer_state.json").read_text())["stateful_callbacks"]["FlopsMeterCallback"]
    assert saved["attributes"]["resume_state"]["totals"]["steps"] == 3  # the fallback copy is exact too
    second = FlopsMeterCallback(emit_every_s=3600, cloudwatch=False, stdout=False)
    _trainer(tmp_path, [second], max_steps=6).train(resume_from_checkpoint=str(checkpoint))
    doc = json.loads((job_env / "flops_meter.json").read_text())
    assert doc["status"] == "completed" and doc["warnings"] == []
    assert doc["resumed_from"]["steps"] == 3
    assert doc["totals"]["steps"] == 6 and doc["tokens"] == 6 * BATCH * ACCUM * SEQ
    assert doc["flops"] == pytest.approx(6 * _flops_per_step(), rel=EXACT)


def test_guard_stops_the_run_and_saves_a_checkpoint(tmp_path, job_env) -> None:
    budget = 3.5 * _flops_per_step()  # eu-guideline policy: threshold = pretrain / 3
    callback = FlopsMeterCallback(stop_at="threshold", policy="eu-guideline-2025-07", pretrain_flops=3 * budget,
                                  emit_every_s=3600, cloudwatch=False, stdout=False)  # fmt: skip
    trainer = _trainer(tmp_path, [callback], max_steps=10)
    trainer.train()
    assert trainer.state.global_step == 3
    assert (tmp_path / "run" / "checkpoint-3" / "flops_meter_state.json").is_file()
    doc = json.loads((job_env / "flops_meter.json").read_text())
    assert doc["status"] == "stopped_by_guard" and doc["flops"] <= budget
    assert "threshold limit" in doc["stop_reason"] and doc["guard"]["policy"] == "eu-guideline-2025-07"
