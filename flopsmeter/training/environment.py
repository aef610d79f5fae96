"""What the meter reads from the SageMaker training container (standard library only).

SageMaker sets ``TRAINING_JOB_NAME``, ``SM_CURRENT_INSTANCE_TYPE``, ``SM_HOSTS`` and ``SM_OUTPUT_DATA_DIR``
and writes ``/opt/ml/input/config/resourceconfig.json``. Outside SageMaker every value may be missing: the
meter then still counts, prints and writes its file, and skips what needs the value (CloudWatch needs a job
name; the ceiling ratio needs an instance type).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from flopsmeter import contract

ENV_OUTPUT_DIR = "FLOPSMETER_OUTPUT_DIR"  # where flops_meter.json goes (overrides the SageMaker default)
ENV_PRIOR_FLOPS = "FLOPSMETER_PRIOR_FLOPS"  # FLOPs already spent on this base model by earlier fine-tunes
SAGEMAKER_OUTPUT_DATA_DIR = "/opt/ml/output/data"  # uploaded by SageMaker to the job's output.tar.gz
RESOURCE_CONFIG = "/opt/ml/input/config/resourceconfig.json"
METER_FILE_NAME = "flops_meter.json"


@dataclass(frozen=True)
class JobEnvironment:
    job_name: str | None
    instance_type: str | None
    instance_count: int
    output_dir: Path
    pretrain_flops: str | None
    base_model: str | None
    systemic_risk_base: bool
    prior_flops: str | None


def _resource_config(path: str) -> dict[str, object]:
    try:
        loaded = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _hosts(env: Mapping[str, str], resource: Mapping[str, object]) -> int:
    raw = env.get("SM_HOSTS")
    hosts: object = None
    if raw:
        try:
            hosts = json.loads(raw)
        except ValueError:
            hosts = None
    if not isinstance(hosts, list):
        hosts = resource.get("hosts")
    return len(hosts) if isinstance(hosts, list) and hosts else 1


def _job_name(env: Mapping[str, str]) -> str | None:
    name = env.get(contract.ENV_TRAINING_JOB_NAME)
    if name:
        return name
    try:  # the SageMaker training toolkit also publishes the job name inside SM_TRAINING_ENV
        training_env = json.loads(env.get("SM_TRAINING_ENV", "{}"))
    except ValueError:
        return None
    value = training_env.get("job_name") if isinstance(training_env, dict) else None
    return value if isinstance(value, str) and value else None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "y"}


def output_dir_from(
    env: Mapping[str, str],
    override: str | os.PathLike[str] | None = None,
    fallback: str | os.PathLike[str] | None = None,
) -> Path:
    """Argument, then ``FLOPSMETER_OUTPUT_DIR``, then ``SM_OUTPUT_DATA_DIR``, then /opt/ml/output/data if it
    exists (inside SageMaker), else ``fallback`` (the trainer's output_dir), else the current directory."""
    if override is not None:
        return Path(override)
    for key in (ENV_OUTPUT_DIR, "SM_OUTPUT_DATA_DIR"):
        if env.get(key):
            return Path(env[key])
    if Path(SAGEMAKER_OUTPUT_DATA_DIR).is_dir():
        return Path(SAGEMAKER_OUTPUT_DATA_DIR)
    return Path(fallback) if fallback is not None else Path.cwd()


def read_job_environment(
    env: Mapping[str, str] | None = None,
    *,
    output_dir: str | os.PathLike[str] | None = None,
    fallback_output_dir: str | os.PathLike[str] | None = None,
    resource_config_path: str = RESOURCE_CONFIG,
) -> JobEnvironment:
    env = os.environ if env is None else env
    resource = _resource_config(resource_config_path)
    instance_type = env.get("SM_CURRENT_INSTANCE_TYPE") or resource.get("current_instance_type")
    return JobEnvironment(
        job_name=_job_name(env),
        instance_type=instance_type if isinstance(instance_type, str) and instance_type else None,
        instance_count=_hosts(env, resource),
        output_dir=output_dir_from(env, output_dir, fallback_output_dir),
        pretrain_flops=env.get(contract.ENV_PRETRAIN_FLOPS),
        base_model=env.get(contract.ENV_BASE_MODEL) or None,
        systemic_risk_base=_truthy(env.get(contract.ENV_SYSTEMIC_RISK_BASE)),
        prior_flops=env.get(ENV_PRIOR_FLOPS),
    )
