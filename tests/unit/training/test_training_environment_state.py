"""SageMaker environment reading and the saved-totals format."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from flopsmeter.training.environment import read_job_environment
from flopsmeter.training.state import Totals, load_state, save_state, state_document, totals_from_document


def test_job_environment_reads_sagemaker_variables(tmp_path) -> None:
    env = {
        "TRAINING_JOB_NAME": "ft-1",
        "SM_CURRENT_INSTANCE_TYPE": "ml.p5.48xlarge",
        "SM_HOSTS": '["algo-1","algo-2"]',
        "SM_OUTPUT_DATA_DIR": str(tmp_path),
        "PRETRAIN_FLOPS": "1.5e24",
        "FLOPSMETER_SYSTEMIC_RISK_BASE": "true",
    }
    job = read_job_environment(env, resource_config_path=str(tmp_path / "missing.json"))
    assert (job.job_name, job.instance_type, job.instance_count) == ("ft-1", "ml.p5.48xlarge", 2)
    assert job.output_dir == tmp_path and job.pretrain_flops == "1.5e24" and job.systemic_risk_base


def test_job_environment_falls_back_to_resourceconfig_and_training_env(tmp_path) -> None:
    config = tmp_path / "resourceconfig.json"
    config.write_text(json.dumps({"current_instance_type": "ml.g5.2xlarge", "hosts": ["algo-1"]}))
    env = {"SM_TRAINING_ENV": json.dumps({"job_name": "from-training-env"}), "FLOPSMETER_OUTPUT_DIR": str(tmp_path)}
    job = read_job_environment(env, resource_config_path=str(config))
    assert (job.job_name, job.instance_type, job.instance_count) == ("from-training-env", "ml.g5.2xlarge", 1)


def test_output_dir_argument_wins_then_env(tmp_path) -> None:
    env = {"FLOPSMETER_OUTPUT_DIR": str(tmp_path / "env")}
    missing = str(tmp_path / "none.json")
    assert read_job_environment(env, output_dir=tmp_path / "arg", resource_config_path=missing).output_dir == (
        tmp_path / "arg"
    )
    assert read_job_environment(env, resource_config_path=missing).output_dir == tmp_path / "env"


@pytest.mark.skipif(Path("/opt/ml/output/data").is_dir(), reason="inside a SageMaker container")
def test_output_dir_falls_back_to_the_trainer_output_dir_outside_sagemaker(tmp_path) -> None:
    job = read_job_environment({}, fallback_output_dir=tmp_path / "fb", resource_config_path=str(tmp_path / "x"))
    assert job.output_dir == tmp_path / "fb"


def test_malformed_environment_values_do_not_raise(tmp_path) -> None:
    env = {"SM_HOSTS": "not json", "SM_TRAINING_ENV": "{", "FLOPSMETER_OUTPUT_DIR": str(tmp_path)}
    job = read_job_environment(env, resource_config_path=str(tmp_path / "missing.json"))
    assert (job.job_name, job.instance_count) == (None, 1)


def test_state_round_trips_through_a_checkpoint_folder(tmp_path) -> None:
    totals = Totals(steps=4, micro_steps=8, tokens=1024, non_padding_tokens=1000, token_positions=32768,
                    flops=1.5e9, recompute_flops=0.0, seconds=2.5)  # fmt: skip
    save_state(tmp_path, state_document(totals, formula_version="arch-v1", job_name="j"))
    assert totals_from_document(load_state(tmp_path)) == totals


def test_missing_state_is_none_and_corrupt_state_is_an_error(tmp_path) -> None:
    assert load_state(tmp_path) is None
    (tmp_path / "flops_meter_state.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_state(tmp_path)


@pytest.mark.parametrize("bad", [-1, math.nan, math.inf, True, "12", None])
def test_state_rejects_values_that_are_not_finite_non_negative_numbers(bad) -> None:
    data = {**Totals(steps=1, tokens=1, flops=1.0).as_dict(), "flops": bad}
    with pytest.raises(ValueError, match="flops"):
        Totals.from_dict(data)


def test_state_rejects_an_unknown_version() -> None:
    with pytest.raises(ValueError, match="version"):
        totals_from_document({"version": 99, "totals": Totals().as_dict()})


def test_a_state_saved_before_the_breakdown_still_loads_as_all_update() -> None:
    saved = Totals(steps=2, tokens=64, token_positions=2048, flops=5.0e9).as_dict()
    for key in ("update_flops", "reference_flops", "generation_flops", "reward_inference_flops", "document_positions"):
        saved.pop(key)
    totals = Totals.from_dict(saved)
    assert totals.update_flops == 5.0e9 and totals.reference_flops == 0.0
    assert totals.document_positions == 2048  # no packed rows known: attention counted at whole rows
