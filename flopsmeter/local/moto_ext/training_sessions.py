"""SageMaker training sessions (issue 26), which moto 5.2 does not know at all.

After ``patch()``: ``CreateTrainingSession`` stores a session (``Created``; a duplicate name is refused) and records
its CloudTrail management event; ``DescribeTrainingSession`` and ``ListTrainingSessions`` answer with botocore
1.44's own output shapes (``moto_ext.shapes``); ``StopTrainingSession`` moves it to ``Stopped`` and
``DeleteTrainingSession`` to ``Deleting``, each recording its call. ``set_training_session_state`` moves a session on
as its user's code would: status, ``BillableTokenUsage``, an error, and checkpoints published to its model package
group (model package versions, so ListModelPackages lists them); ``gone=True`` removes a deleted session (then
DescribeTrainingSession answers ResourceNotFound, as SageMaker does once deletion completes).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from flopsmeter import contract
from flopsmeter.local.moto_ext.cloudtrail import retime_cloudtrail_event
from flopsmeter.local.moto_ext.common import (
    CONTROL_PREFIX,
    EmulatorError,
    aware,
    backend_store,
    default_account,
    default_region,
    parse_time,
    post,
)
from flopsmeter.local.moto_ext.launches import record_launch_event
from flopsmeter.local.moto_ext.shapes import shaped

SESSION_STATE_PATH = f"{CONTROL_PREFIX}/training-session-state"
_STORE = "flopsmeter_training_sessions"


def _sessions(backend: Any) -> dict[str, dict[str, Any]]:
    return backend_store(backend, _STORE)


def _not_found(name: str) -> Exception:
    from moto.sagemaker.exceptions import ResourceNotFound

    return ResourceNotFound(f"Training session {name} does not exist")


def patch() -> None:
    from moto.sagemaker.responses import SageMakerResponse

    SageMakerResponse.create_training_session = _create  # type: ignore[attr-defined]
    SageMakerResponse.describe_training_session = _describe  # type: ignore[attr-defined]
    SageMakerResponse.list_training_sessions = _list  # type: ignore[attr-defined]
    SageMakerResponse.stop_training_session = _stop  # type: ignore[attr-defined]
    SageMakerResponse.delete_training_session = _delete  # type: ignore[attr-defined]


def _create(self: Any) -> str:
    from moto.sagemaker.exceptions import ResourceInUseException

    name = self._get_param("TrainingSessionName")
    sessions = _sessions(self.sagemaker_backend)
    if name in sessions:
        raise ResourceInUseException(f"Training session {name} already exists")
    arn = f"arn:aws:sagemaker:{self.region}:{self.current_account}:training-session/{name}"
    now = datetime.now(UTC)
    sessions[name] = {
        "TrainingSessionArn": arn, "TrainingSessionName": name, "TrainingSessionStatus": "Created",
        "CreationTime": now, "LastModifiedTime": now,
        **{k: self._get_param(k) for k in ("ModelPackageGroupArn", "LoraConfig", "ModelConfig", "OutputConfig",
                                           "RoleArn", "VpcConfig", "Tags")},
    }  # fmt: skip
    request = {
        "trainingSessionName": name,
        "roleArn": self._get_param("RoleArn"),
        "modelConfig": {"baseModelArn": (self._get_param("ModelConfig") or {}).get("BaseModelArn")},
        "loraConfig": {k.lower(): v for k, v in (self._get_param("LoraConfig") or {}).items()},
        "modelPackageGroupArn": self._get_param("ModelPackageGroupArn"),
    }
    record_launch_event(self, contract.CREATE_TRAINING_SESSION, request, {"trainingSessionArn": arn})
    return json.dumps(shaped("sagemaker", "CreateTrainingSession", {"TrainingSessionArn": arn}))


def _describe(self: Any) -> str:
    name = self._get_param("TrainingSessionName")
    session = _sessions(self.sagemaker_backend).get(name)
    if session is None:
        raise _not_found(name)
    return json.dumps(shaped("sagemaker", "DescribeTrainingSession", {"TrainingSessionDetail": session}))


def _list(self: Any) -> str:
    status = self._get_param("StatusEquals")
    after, before = parse_time(self._get_param("CreationTimeAfter")), parse_time(self._get_param("CreationTimeBefore"))
    contains = self._get_param("NameContains")
    found = [
        s for s in _sessions(self.sagemaker_backend).values()
        if (status is None or s["TrainingSessionStatus"] == status)
        and (after is None or aware(s["CreationTime"]) > after)
        and (before is None or aware(s["CreationTime"]) < before)
        and (not contains or contains in s["TrainingSessionName"])
    ]  # fmt: skip
    return json.dumps(shaped("sagemaker", "ListTrainingSessions", {"TrainingSessionSummaries": found}))


def _end(self: Any, event_name: str, status: str) -> str:
    name = self._get_param("TrainingSessionName")
    session = _sessions(self.sagemaker_backend).get(name)
    if session is None:
        raise _not_found(name)
    now = datetime.now(UTC)
    session.update({"TrainingSessionStatus": status, "LastModifiedTime": now})
    session.setdefault("EndTime", now)
    record_launch_event(self, event_name, {"trainingSessionName": name}, None)
    return json.dumps({})


def _stop(self: Any) -> str:
    return _end(self, "StopTrainingSession", "Stopped")


def _delete(self: Any) -> str:
    return _end(self, "DeleteTrainingSession", "Deleting")


@dataclass(frozen=True)
class SessionState:
    """Where to move an emulated training session; None leaves a field as it is."""

    status: str | None = None
    training_tokens: int | None = None  # BillableTokenUsage.TrainingTokenCount
    prefill_tokens: int | None = None
    sample_tokens: int | None = None
    error: str | None = None  # ErrorDetails
    end: datetime | None = None
    creation: datetime | None = None  # backdates the session and its CreateTrainingSession event
    checkpoints: int = 0  # model package versions to publish to its group now
    gone: bool = False  # deletion completed: the session no longer exists


def set_training_session_state(
    name: str, state: SessionState, *, account_id: str | None = None, region: str | None = None,
    endpoint: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Move an emulated session on; returns what DescribeTrainingSession now reports (``{}`` once gone)."""
    body = {"name": name, **asdict(state), "account_id": account_id or default_account(),
            "region": region or default_region()}  # fmt: skip
    if endpoint:
        return post(endpoint, SESSION_STATE_PATH, body)
    return apply_session_state(body)


def apply_session_state(body: dict[str, Any]) -> dict[str, Any]:
    from moto.sagemaker.models import sagemaker_backends

    backend = sagemaker_backends[body["account_id"]][body["region"]]
    sessions = _sessions(backend)
    session = sessions.get(body["name"])
    if session is None:
        raise EmulatorError(f"no training session {body['name']!r} in {body['account_id']}/{body['region']}")
    status = body.get("status")
    if status is not None and status not in contract.SESSION_STATUSES:
        raise EmulatorError(
            f"unknown training session status {status!r}; one of {', '.join(contract.SESSION_STATUSES)}"
        )
    now = datetime.now(UTC)
    if body.get("creation"):  # backdated: its CreateTrainingSession event moves with it
        session["CreationTime"] = parse_time(body["creation"])
        retime_cloudtrail_event(session["TrainingSessionArn"], session["CreationTime"], account_id=body["account_id"],
                                region=body["region"])  # fmt: skip
    if status:
        session["TrainingSessionStatus"] = status
        if status in contract.SESSION_ENDED_STATUSES:
            session.setdefault("EndTime", parse_time(body.get("end")) or now)
    if body.get("end"):
        session["EndTime"] = parse_time(body["end"])
    usage = dict(session.get("BillableTokenUsage") or {})
    for field_name, member in (("training_tokens", "TrainingTokenCount"), ("prefill_tokens", "PrefillTokenCount"),
                               ("sample_tokens", "SampleTokenCount")):  # fmt: skip
        if body.get(field_name) is not None:
            usage[member] = int(body[field_name])
    if usage:
        session["BillableTokenUsage"] = usage
    if body.get("error") is not None:
        session["ErrorDetails"] = str(body["error"])
    _publish_checkpoints(backend, session, int(body.get("checkpoints") or 0))
    session["LastModifiedTime"] = now
    if body.get("gone"):
        del sessions[body["name"]]
        return {}
    described = shaped("sagemaker", "DescribeTrainingSession", {"TrainingSessionDetail": session})
    return dict(described["TrainingSessionDetail"])


def _publish_checkpoints(backend: Any, session: dict[str, Any], count: int) -> None:
    """``count`` model package versions in the session's group, as a session's saveWeights publishes them."""
    group_arn = session.get("ModelPackageGroupArn")
    if not count:
        return
    if not group_arn:
        raise EmulatorError(f"training session {session['TrainingSessionName']} has no model package group")
    group = str(group_arn).rsplit("/", 1)[-1]
    if group not in backend.model_package_groups:
        backend.create_model_package_group(model_package_group_name=group, model_package_group_description="",
                                           tags=[])  # fmt: skip
    for _ in range(count):
        backend.create_model_package(
            model_package_name=None, model_package_group_name=group,
            model_package_description=f"checkpoint of training session {session['TrainingSessionName']}",
            inference_specification=None, validation_specification=None, source_algorithm_specification=None,
            certify_for_marketplace=False, tags=None, model_approval_status="PendingManualApproval",
            metadata_properties=None, model_metrics=None, client_token=None, customer_metadata_properties=None,
            drift_check_baselines=None, domain=None, task=None, sample_payload_url=None,
            additional_inference_specifications=None,
        )  # fmt: skip
