"""Events as AWS sends them, built from what the emulator reports of a job, and the records a replay compares."""

from __future__ import annotations

import ast
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from flopsmeter import contract
from flopsmeter.audit.record import AuditRecord
from flopsmeter.local.clients import client
from flopsmeter.local.provision import LocalResources
from flopsmeter.local.replay import record_keys_for

# What a replay cannot carry: the record's time, the EventBridge id, the CloudTrail provenance of the creating call
# (the emulator's caller, not the event's) and the seal over all of them.
NOT_CARRIED = {"recorded_at", "eventbridge_event_id", "cloudtrail", "sha256"}


def _ms(value: Any) -> Any:
    return str(int(value.timestamp() * 1000)) if isinstance(value, datetime) else value


def training_event(r: LocalResources, name: str) -> dict[str, Any]:
    """SageMaker's event: ``detail`` is the job as DescribeTrainingJob reports it, times in epoch ms, tags a map."""
    sm = client("sagemaker", r.endpoint, r.region)
    job = {k: v for k, v in sm.describe_training_job(TrainingJobName=name).items() if k != "ResponseMetadata"}
    tags = sm.list_tags(ResourceArn=job["TrainingJobArn"])["Tags"]
    detail = json.loads(json.dumps({k: _ms(v) for k, v in job.items()}, default=_ms))
    detail["FinalMetricDataList"] = [
        {**m, "Timestamp": _ms(m["Timestamp"])} for m in job.get("FinalMetricDataList", [])
    ]
    detail["Tags"] = {t["Key"]: t["Value"] for t in tags}
    envelope = {"account": r.account_id, "region": r.region, "resources": [job["TrainingJobArn"]]}
    return {"source": contract.SAGEMAKER_EVENT_SOURCE, "detail-type": contract.TRAINING_JOB_STATE_CHANGE,
            **envelope, "detail": detail}  # fmt: skip


def bedrock_event(r: LocalResources, name: str) -> dict[str, Any]:
    job = client("bedrock", r.endpoint, r.region).get_model_customization_job(jobIdentifier=name)
    detail = {("jobStatus" if k == "status" else k): v for k, v in job.items() if k != "ResponseMetadata"}
    detail = json.loads(json.dumps(detail, default=lambda t: t.isoformat()))
    return {"source": contract.BEDROCK_EVENT_SOURCE, "detail-type": contract.MODEL_CUSTOMIZATION_JOB_STATE_CHANGE,
            "account": r.account_id, "region": r.region, "resources": [job["jobArn"]], "detail": detail}  # fmt: skip


def records(r: LocalResources, names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    s3 = client("s3", r.endpoint, r.region)
    found = {}
    for name in names:
        [key] = record_keys_for(r, name)
        document = json.loads(s3.get_object(Bucket=r.audit_bucket, Key=key)["Body"].read())
        AuditRecord.model_validate(document)
        found[name] = {k: v for k, v in document.items() if k not in NOT_CARRIED}
    return found


def keys_read(path: Path, receivers: set[str]) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            owner = node.func.value
            if isinstance(owner, ast.Name) and owner.id in receivers and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.add(arg.value)
    return found
