"""The meter's report of a SageMaker HyperPod job (issue 26 point 3): one message on the service's reports queue when
the job ends, signed with the job's own IAM credentials (the service reads who sent it from SQS, not from here).

Sent by rank 0 at the final emission when ``FLOPSMETER_REPORT_QUEUE_URL`` is set (docs/hyperpod.md says how to set it
on Slurm and on EKS). The job is named by ``FLOPSMETER_JOB_ID``, else Slurm's ``SLURM_JOB_ID`` (``<id>_<task>`` for an
array task); the cluster by ``FLOPSMETER_HYPERPOD_CLUSTER``. The body is also written next to ``flops_meter.json`` so
a report that could not be sent is not lost (``aws sqs send-message --message-body file://...`` from the same role
sends it later). A failure to send never stops training: it is logged and said on stdout.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flopsmeter import contract

logger = logging.getLogger(__name__)
REPORT_FILE_NAME = "flopsmeter_hyperpod_report.json"
SETTINGS = (
    contract.ENV_PRETRAIN_FLOPS, contract.ENV_BASE_MODEL, contract.ENV_SYSTEMIC_RISK_BASE, contract.ENV_PARENT_JOB,
    contract.ENV_DECLARED_FLOPS, contract.ENV_PARENT_FLOPS, contract.ENV_PRETRAIN_FLOPS_OVERRIDE_REASON,
)  # fmt: skip
_STATUS = {"completed": "Completed", "stopped_by_guard": "Stopped", "stopped": "Stopped"}


def job_id_from(env: Mapping[str, str]) -> str | None:
    explicit = env.get("FLOPSMETER_JOB_ID", "").strip()
    if explicit:
        return explicit
    job, task = env.get("SLURM_ARRAY_JOB_ID", "").strip(), env.get("SLURM_ARRAY_TASK_ID", "").strip()
    if job and task:
        return f"{job}_{task}"
    return env.get("SLURM_JOB_ID", "").strip() or None


def _process_start(env: Mapping[str, str]) -> datetime:
    """The job's start: Slurm's SLURM_JOB_START_TIME (epoch seconds), else this process's start (Linux), else now."""
    raw = env.get("SLURM_JOB_START_TIME", "").strip()
    if raw.isdigit():
        return datetime.fromtimestamp(int(raw), UTC)
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(
            int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime")
        )
        return datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK"), UTC)
    except (OSError, ValueError, IndexError, StopIteration):
        return datetime.now(UTC)


def build_report(snap: Any, status: str, caller_arn: str, env: Mapping[str, str], end: datetime) -> dict[str, Any]:
    """The report body (``flopsmeter.functions.hyperpod_models.HyperPodReportBody``) from the final snapshot."""
    cluster = env.get(contract.ENV_HYPERPOD_CLUSTER, "").strip()
    nodes = env.get("SLURM_JOB_NUM_NODES") or env.get("FLOPSMETER_NODE_COUNT") or "1"
    body: dict[str, Any] = {
        "kind": contract.HYPERPOD_REPORT_KIND,
        "version": contract.HYPERPOD_REPORT_VERSION,
        "cluster": cluster,
        "orchestrator": "slurm" if env.get("SLURM_JOB_ID") else "eks",
        "job_id": job_id_from(env),
        "caller_arn": caller_arn,
        "status": _STATUS.get(status, "Failed"),
        "start_time": _process_start(env).isoformat(),
        "end_time": end.isoformat(),
        "instance_type": env.get("FLOPSMETER_INSTANCE_TYPE", "").strip() or "unknown",
        "node_count": int(nodes) if re.fullmatch(r"[0-9]{1,6}", nodes.strip()) and int(nodes) > 0 else 1,
        "settings": {k: env[k] for k in SETTINGS if env.get(k)},
        "submitted_by": env.get("SLURM_JOB_USER") or env.get("FLOPSMETER_SUBMITTED_BY") or None,
    }
    if getattr(snap, "unmetered", False):
        body["meter_incomplete"] = 1.0
        return body
    body |= {
        "cumulative_flops": float(snap.cumulative_flops),
        "tokens": float(snap.tokens),
        "non_padding_tokens": float(snap.non_padding_tokens),
        "recompute_flops": float(snap.recompute_flops),
        "meter_incomplete": 1.0 if snap.incomplete else 0.0,
    }
    return body


def send_report(snap: Any, status: str, output_dir: Path, env: Mapping[str, str] | None = None,
                clients: Any = None) -> str | None:  # fmt: skip
    """Send the report when ``FLOPSMETER_REPORT_QUEUE_URL`` is set; returns the message id (None: not sent)."""
    env = os.environ if env is None else env
    url = env.get(contract.ENV_REPORT_QUEUE_URL, "").strip()
    if not url:
        return None
    try:
        import boto3

        make = clients or boto3.client
        region = url.split(".")[1] if url.startswith("https://sqs.") else env.get("AWS_REGION") or None
        caller = str(make("sts", region_name=region).get_caller_identity()["Arn"])
        body = build_report(snap, status, caller, env, datetime.now(UTC))
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / REPORT_FILE_NAME).write_text(json.dumps(body, indent=1))
        for attempt in range(3):
            try:
                return str(make("sqs", region_name=region).send_message(QueueUrl=url, MessageBody=json.dumps(body))[
                    "MessageId"])  # fmt: skip
            except Exception:  # noqa: BLE001 - retried, then reported below
                if attempt == 2:
                    raise
                time.sleep(2**attempt)
    except Exception as err:  # noqa: BLE001 - the report must never stop training
        logger.warning("flopsmeter: hyperpod report not sent: %s: %s", type(err).__name__, err)
        print(f"flopsmeter: hyperpod_report=not_sent reason={type(err).__name__} file={output_dir / REPORT_FILE_NAME}")
    return None
