"""Real (tiny, CPU) Trainer runs where the meter cannot be whole: an architecture it cannot meter (training goes
on, unmetered; strict=True fails instead) and a resume without saved totals (flagged, estimated, MeterIncomplete).

Emulated: CloudWatch is moto's in-process ``mock_aws``; the SageMaker container is emulated by environment
variables (see test_training_callback.py, whose helpers these tests share).
"""

from __future__ import annotations

import json
import re

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
boto3 = pytest.importorskip("boto3")
moto = pytest.importorskip("moto")

from flopsmeter import contract  # noqa: E402
from flopsmeter.domain.errors import InvalidModelSpec  # noqa: E402
from flopsmeter.training.callback import FlopsMeterCallback  # noqa: E402
from tests.integration.test_training_callback import (  # noqa: E402
    BATCH,
    SEQ,
    _flops_per_step,
    _metric_max,
    _trainer,
    job_env,  # noqa: F401  (fixture)
)
from tests.support.meters import EXACT  # noqa: E402
from tests.support.tiny_models import TokenDataset  # noqa: E402

pytestmark = pytest.mark.torch


def _deepseek_trainer(tmp_path, callbacks, *, max_steps: int):
    config = transformers.DeepseekV3Config(
        hidden_size=64, intermediate_size=128, moe_intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, n_routed_experts=4, num_experts_per_tok=2, n_shared_experts=1,
        first_k_dense_replace=1, kv_lora_rank=16, q_lora_rank=32, qk_rope_head_dim=8, qk_nope_head_dim=8,
        v_head_dim=16, vocab_size=256, n_group=1, topk_group=1, max_position_embeddings=512,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "run"), per_device_train_batch_size=BATCH, max_steps=max_steps,
        save_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True, logging_steps=1000,
    )  # fmt: skip
    return transformers.Trainer(model=model, args=args, train_dataset=TokenDataset(64, seq=SEQ), callbacks=callbacks)


def _metric_values(client, name: str) -> list[float]:
    try:
        return [_metric_max(client, name)]
    except ValueError:  # max() of no datapoints
        return []


def test_deepseek_v3_is_measured_on_meta_and_metered(tmp_path, job_env) -> None:  # noqa: F811
    trainer = _deepseek_trainer(tmp_path, [FlopsMeterCallback(cloudwatch=False, stdout=False)], max_steps=2)
    trainer.train()
    doc = json.loads((job_env / "flops_meter.json").read_text())
    assert doc["status"] == "completed" and doc["meter_incomplete"] is False and doc["flops"] > 0
    assert doc["passes"]["model_source"] == "meta"


def test_deepseek_latent_attention_trains_to_the_end_unmetered(tmp_path, job_env, capsys) -> None:  # noqa: F811
    with moto.mock_aws():
        # with the meta check off the closed form is alone, and it does not cover latent attention
        trainer = _deepseek_trainer(tmp_path, [FlopsMeterCallback(emit_every_s=0, meta_check=False)], max_steps=3)
        trainer.train()
        client = boto3.client("cloudwatch", region_name="eu-west-1")
        incomplete = _metric_values(client, contract.METRIC_METER_INCOMPLETE)
        flops = _metric_values(client, contract.METRIC_CUMULATIVE_FLOPS)
    assert trainer.state.global_step == 3
    doc = json.loads((job_env / "flops_meter.json").read_text())
    assert doc["status"] == "unmetered" and doc["run_status"] == "completed" and doc["steps"] == 3
    assert "latent attention" in doc["unmetered_reason"] and doc["flops"] is None
    assert incomplete == [1.0] and flops == []  # the classifier sees no FLOPs, only the flag: ceiling
    out = capsys.readouterr().out
    assert "flopsmeter [ERROR] this job is NOT metered (InvalidModelSpec: multi-head latent attention" in out
    assert "cumulative_flops=" not in out


def test_strict_makes_the_same_run_fail_at_the_start(tmp_path, job_env) -> None:  # noqa: F811
    callback = FlopsMeterCallback(strict=True, cloudwatch=False, stdout=False, meta_check=False)
    with pytest.raises(InvalidModelSpec, match="latent attention"):  # the meter starts when the trainer is built
        _deepseek_trainer(tmp_path, [callback], max_steps=3)
    assert callback.meter is None


def test_resume_without_saved_totals_is_flagged_estimated_and_sent(tmp_path, job_env, capsys) -> None:  # noqa: F811
    _trainer(tmp_path, [FlopsMeterCallback(cloudwatch=False, stdout=False)], max_steps=3, save_steps=3).train()
    checkpoint = tmp_path / "run" / "checkpoint-3"
    (checkpoint / "flops_meter_state.json").unlink()  # e.g. a checkpoint written before the meter was added
    trainer_state = json.loads((checkpoint / "trainer_state.json").read_text())
    trainer_state["stateful_callbacks"].pop("FlopsMeterCallback")
    (checkpoint / "trainer_state.json").write_text(json.dumps(trainer_state))
    capsys.readouterr()
    with moto.mock_aws():
        trainer = _trainer(tmp_path, [FlopsMeterCallback(emit_every_s=0)], max_steps=6)
        trainer.train(resume_from_checkpoint=str(checkpoint))
        client = boto3.client("cloudwatch", region_name="eu-west-1")
        incomplete = _metric_max(client, contract.METRIC_METER_INCOMPLETE)
        flops = _metric_max(client, contract.METRIC_CUMULATIVE_FLOPS)
    doc = json.loads((job_env / "flops_meter.json").read_text())
    assert doc["status"] == "completed" and doc["meter_incomplete"] is True
    assert doc["totals"]["steps"] == 6 and doc["incomplete"]["missing_steps"] == 3
    assert doc["metered_flops"] == pytest.approx(3 * _flops_per_step(), rel=EXACT)
    assert doc["flops"] == pytest.approx(6 * _flops_per_step(), rel=EXACT)  # 3 counted + 3 x the largest step
    assert incomplete == 1.0 and flops == pytest.approx(doc["flops"], rel=EXACT)
    out = capsys.readouterr().out
    assert "flopsmeter [WARNING] meter totals incomplete: resumed at step 3 without saved meter totals" in out
    assert re.findall(r"flopsmeter: .*meter_incomplete=([01])", out) == ["1"] * 4  # steps 4, 5, 6 and the end
