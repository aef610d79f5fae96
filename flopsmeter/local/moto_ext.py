"""Fill moto 5.2.5's gaps so the service's boto3 code paths run unchanged against the emulator.

What moto does not do, and what ``install()`` adds (emulated behaviour, not AWS's):

* ``CreateTrainingJob`` ignores ``Environment`` and marks the job ``Completed`` at once, with start = end =
  creation. After ``install()`` a new job is ``InProgress`` / ``Starting`` with no start or end time, keeps
  its ``Environment`` and its own ``MetricDefinitions``, and a duplicate name is refused (``ResourceInUse``)
  as SageMaker does. ``set_training_job_state`` moves it on: status, secondary status, start/end times,
  ``TrainingTimeInSeconds``, ``BillableTimeInSeconds``, ``FailureReason``, ``FinalMetricDataList``.
  Tags stay where AWS keeps them: ``ListTags`` on the job ARN (``DescribeTrainingJob`` has no ``Tags``
  member in the real API, so botocore would drop it).
* EventBridge -> SQS: moto's default target input leaves out the envelope's ``account``; it is put back.
* CloudTrail ``LookupEvents`` is not implemented. After ``install()`` every ``CreateTrainingJob`` records a
  management event in the shape LookupEvents returns (``EventId``, ``EventTime``, ``Username``,
  ``AccessKeyId``, ``Resources``, ``CloudTrailEvent`` as a JSON string with ``userIdentity.arn``,
  ``sourceIPAddress``, ``userAgent``, ``requestParameters``, ``responseElements``), and LookupEvents
  answers with one lookup attribute (``EventName``, ``ResourceName`` - the job name or ARN - ``EventId``,
  ``EventSource``, ``Username``, ``ResourceType``, ``ReadOnly``, ``AccessKeyId``), ``StartTime`` /
  ``EndTime``, ``MaxResults`` and ``NextToken``, newest first. An optional delivery lag hides events
  younger than the lag, like CloudTrail's ~15-minute delay.

The same state is reachable from another process over HTTP (``endpoint=`` on every helper), through
routes added to moto's own ``/moto-api/`` control plane, so a detached ``flopsmeter local up`` server can be
driven like the in-process ``mock_aws``.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from flopsmeter.domain.errors import FlopsMeterError

DEFAULT_ACCOUNT_ID = "123456789012"  # moto's default account
CONTROL_PREFIX = "/moto-api/flopsmeter"
STATE_PATH = f"{CONTROL_PREFIX}/training-job-state"
LAG_PATH = f"{CONTROL_PREFIX}/cloudtrail-lag"
CLEAR_PATH = f"{CONTROL_PREFIX}/cloudtrail-clear"
CLOUDTRAIL_LAG_ENV = "FLOPSMETER_LOCAL_CLOUDTRAIL_LAG_SECONDS"  # default delivery lag of a fresh backend
JOB_STATUSES = ("InProgress", "Completed", "Failed", "Stopping", "Stopped")
_SECONDARY_FOR_STATUS = {
    "InProgress": "Training",
    "Completed": "Completed",
    "Failed": "Failed",
    "Stopping": "Stopping",
    "Stopped": "Stopped",
}
_LOOKUP_KEYS = {
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
}
_MAX_RESULTS = 50  # CloudTrail's own maximum and default page size
_install_lock = threading.Lock()


class EmulatorError(FlopsMeterError):
    """A control request the emulator cannot honour (unknown job, bad status, emulator unreachable)."""


_installed = False


# ---------------------------------------------------------------------------------------------------- install


def install() -> None:
    """Patch moto (idempotent, process-wide). Call before ``mock_aws()`` or before starting a moto server."""
    global _installed
    with _install_lock:
        if _installed:
            return
        _patch_sagemaker()
        _patch_cloudtrail()
        _patch_eventbridge()
        _add_control_routes()
        _installed = True


def installed() -> bool:
    return _installed


def _patch_sagemaker() -> None:
    from moto.sagemaker.exceptions import ResourceInUseException
    from moto.sagemaker.responses import SageMakerResponse

    original = SageMakerResponse.create_training_job

    def create_training_job(self: Any) -> Any:
        name = self._get_param("TrainingJobName")
        backend = self.sagemaker_backend
        if name in backend.training_jobs:
            raise ResourceInUseException(
                f"Training job names must be unique within an AWS account and region, and a training job with "
                f"this name already exists ({backend.training_jobs[name].arn})"
            )
        own_definitions = copy.deepcopy((self._get_param("AlgorithmSpecification") or {}).get("MetricDefinitions"))
        result = original(self)  # moto overwrites MetricDefinitions in the request's own dict
        job = backend.training_jobs[name]
        _make_realistic(job, self._get_param("Environment"), own_definitions)
        _record_create_event(self, job)
        return result

    SageMakerResponse.create_training_job = create_training_job  # type: ignore[method-assign]


def _make_realistic(job: Any, environment: dict[str, str] | None, own_definitions: list[Any] | None) -> None:
    job.environment = dict(environment) if environment else None
    if own_definitions:
        job.algorithm_specification["MetricDefinitions"] = own_definitions
    else:
        job.algorithm_specification.pop("MetricDefinitions", None)  # moto inserts a made-up one
    job.training_job_status = "InProgress"
    job.secondary_status = "Starting"
    job.training_start_time = None
    job.training_end_time = None
    job.failure_reason = None
    job.training_time_in_seconds = None
    job.billable_time_in_seconds = None
    job.final_metric_data_list = []
    job.secondary_status_transitions = [
        {"Status": "Starting", "StartTime": job.creation_time, "StatusMessage": "Launching requested ML instances"}
    ]


def _patch_cloudtrail() -> None:
    from moto.cloudtrail.responses import CloudTrailResponse

    def lookup_events(self: Any) -> str:
        backend = self.cloudtrail_backend
        reply = lookup_cloudtrail_events(
            _events(backend),
            lag_seconds=_lag(backend),
            attributes=self._get_param("LookupAttributes") or [],
            start=_parse_time(self._get_param("StartTime")),
            end=_parse_time(self._get_param("EndTime")),
            max_results=self._get_param("MaxResults"),
            next_token=self._get_param("NextToken"),
        )
        return json.dumps(reply)

    CloudTrailResponse.lookup_events = lookup_events  # type: ignore[attr-defined]


def _patch_eventbridge() -> None:
    """moto's default target input drops the envelope's ``account``; EventBridge always sends it."""
    from moto.events.utils import EventTemplateParser

    template = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    if '"account"' not in template:
        EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = template.replace(
            '"version": "0", ', '"version": "0", "account": "<account>", '
        )


# ---------------------------------------------------------------------------------------------------- CloudTrail


def _events(backend: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] | None = getattr(backend, "_flopsmeter_events", None)
    if events is None:
        events = []
        backend._flopsmeter_events = events
    return events


def _lag(backend: Any) -> float:
    lag = getattr(backend, "_flopsmeter_lag_seconds", None)
    if lag is None:
        lag = float(os.environ.get(CLOUDTRAIL_LAG_ENV, "0") or 0)
    return float(lag)


def _cloudtrail_backend(account_id: str, region: str) -> Any:
    from moto.cloudtrail.models import cloudtrail_backends

    return cloudtrail_backends[account_id][region]


def _caller(account_id: str, access_key: str, region: str) -> tuple[str, str]:
    """(principal id, ARN) of the caller, as moto's STS GetCallerIdentity sees it."""
    from moto.sts.models import sts_backends

    try:
        principal_id, arn, _ = sts_backends[account_id]["aws"].get_caller_identity(access_key, region)
    except Exception:  # noqa: BLE001 - an odd key never stops the create call
        return "AIDAEXAMPLEMOTOUSER", f"arn:aws:iam::{account_id}:user/moto"
    return str(principal_id), str(arn)


def _record_create_event(response: Any, job: Any) -> None:
    account_id, region = response.current_account, response.region
    access_key = response.get_access_key() or "AKIAIOSFODNN7EXAMPLE"
    principal_id, arn = _caller(account_id, access_key, region)
    request = getattr(response, "request", None)
    source_ip = getattr(request, "remote_addr", None) or "127.0.0.1"
    user_agent = str(response.headers.get("User-Agent", "")) or "flopsmeter-local"
    params = {
        "trainingJobName": job.training_job_name,
        "roleArn": job.role_arn,
        "algorithmSpecification": {
            k[0].lower() + k[1:]: v for k, v in (job.algorithm_specification or {}).items() if k != "MetricDefinitions"
        },
        "resourceConfig": {k[0].lower() + k[1:]: v for k, v in (job.resource_config or {}).items()},
        "stoppingCondition": {k[0].lower() + k[1:]: v for k, v in (job.stopping_condition or {}).items()},
        "hyperParameters": "HIDDEN_DUE_TO_SECURITY_REASONS",
        "environment": "HIDDEN_DUE_TO_SECURITY_REASONS",
    }
    record_cloudtrail_event(
        event_name="CreateTrainingJob",
        event_source="sagemaker.amazonaws.com",
        account_id=account_id,
        region=region,
        principal_arn=arn,
        principal_id=principal_id,
        access_key_id=access_key,
        source_ip=source_ip,
        user_agent=user_agent,
        request_parameters=params,
        response_elements={"trainingJobArn": job.arn},
        resources=[{"ResourceType": "AWS::SageMaker::TrainingJob", "ResourceName": job.training_job_name}],
        event_time=job.creation_time,
    )


def _identity(principal_arn: str, principal_id: str, account_id: str, access_key_id: str) -> dict[str, Any]:
    kind = "AssumedRole" if ":assumed-role/" in principal_arn else "IAMUser"
    identity: dict[str, Any] = {
        "type": kind,
        "principalId": principal_id,
        "arn": principal_arn,
        "accountId": account_id,
        "accessKeyId": access_key_id,
    }
    if kind == "IAMUser":
        identity["userName"] = principal_arn.rsplit("/", 1)[-1]
    else:
        role_name = principal_arn.split(":assumed-role/", 1)[1].split("/", 1)[0]
        identity["sessionContext"] = {
            "sessionIssuer": {
                "type": "Role",
                "arn": f"arn:aws:iam::{account_id}:role/{role_name}",
                "accountId": account_id,
                "userName": role_name,
            },
        }
    return identity


def record_cloudtrail_event(
    *,
    event_name: str,
    event_source: str,
    account_id: str,
    region: str,
    principal_arn: str,
    principal_id: str = "AIDAEXAMPLE",
    access_key_id: str = "AKIAIOSFODNN7EXAMPLE",
    source_ip: str = "127.0.0.1",
    user_agent: str = "flopsmeter-local",
    request_parameters: dict[str, Any] | None = None,
    response_elements: dict[str, Any] | None = None,
    resources: list[dict[str, str]] | None = None,
    event_time: datetime | None = None,
) -> dict[str, Any]:
    """Store one management event in the emulated CloudTrail of ``account_id``/``region``; returns it."""
    when = _aware(event_time or datetime.now(UTC))
    event_id = str(uuid.uuid4())
    identity = _identity(principal_arn, principal_id, account_id, access_key_id)
    detail = {
        "eventVersion": "1.08",
        "userIdentity": identity,
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": event_source,
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": source_ip,
        "userAgent": user_agent,
        "requestParameters": request_parameters,
        "responseElements": response_elements,
        "requestID": str(uuid.uuid4()),
        "eventID": event_id,
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account_id,
        "eventCategory": "Management",
    }
    event = {
        "EventId": event_id,
        "EventName": event_name,
        "ReadOnly": "false",
        "AccessKeyId": access_key_id,
        "EventTime": when.timestamp(),
        "EventSource": event_source,
        "Username": identity.get("userName") or principal_arn.rsplit("/", 1)[-1],
        "Resources": list(resources or []),
        "CloudTrailEvent": json.dumps(detail),
        "_arns": [str((response_elements or {}).get("trainingJobArn", ""))],  # ResourceName may be the ARN too
    }
    _events(_cloudtrail_backend(account_id, region)).append(event)
    return {k: v for k, v in event.items() if not k.startswith("_")}


def _matches(event: dict[str, Any], key: str, value: str) -> bool:
    if key == "ResourceName":
        names = [r.get("ResourceName") for r in event.get("Resources", [])] + event.get("_arns", [])
        return value in names
    if key == "ResourceType":
        return any(r.get("ResourceType") == value for r in event.get("Resources", []))
    return str(event.get(key)) == value


def lookup_cloudtrail_events(
    events: Iterable[dict[str, Any]],
    *,
    lag_seconds: float = 0.0,
    attributes: list[dict[str, str]] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    max_results: int | None = None,
    next_token: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """LookupEvents over stored events, with CloudTrail's validation errors and newest-first pagination."""
    from moto.core.exceptions import JsonRESTError

    attributes = attributes or []
    if len(attributes) > 1:
        raise JsonRESTError("InvalidLookupAttributesException", "You cannot specify more than one lookup attribute.")
    for attribute in attributes:
        if attribute.get("AttributeKey") not in _LOOKUP_KEYS or not attribute.get("AttributeValue"):
            raise JsonRESTError("InvalidLookupAttributesException", f"Invalid lookup attribute: {attribute}")
    if start and end and start > end:
        raise JsonRESTError("InvalidTimeRangeException", "Start time must be before end time.")
    page_size = _MAX_RESULTS if max_results is None else int(max_results)
    if not 1 <= page_size <= _MAX_RESULTS:
        raise JsonRESTError("InvalidMaxResultsException", f"MaxResults must be between 1 and {_MAX_RESULTS}.")
    offset = 0
    if next_token:
        try:
            offset = int(base64.urlsafe_b64decode(next_token.encode()).decode())
        except ValueError as err:
            raise JsonRESTError("InvalidNextTokenException", "Invalid NextToken.") from err

    delivered_before = (now or datetime.now(UTC)).timestamp() - lag_seconds
    selected = [
        e
        for e in events
        if e["EventTime"] <= delivered_before
        and (start is None or e["EventTime"] >= start.timestamp())
        and (end is None or e["EventTime"] <= end.timestamp())
        and all(_matches(e, a["AttributeKey"], a["AttributeValue"]) for a in attributes)
    ]
    selected.sort(key=lambda e: e["EventTime"], reverse=True)
    page = selected[offset : offset + page_size]
    reply: dict[str, Any] = {"Events": [{k: v for k, v in e.items() if not k.startswith("_")} for e in page]}
    if offset + page_size < len(selected):
        reply["NextToken"] = base64.urlsafe_b64encode(str(offset + page_size).encode()).decode()
    return reply


def _parse_time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    text = str(value)
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        return _aware(datetime.fromisoformat(text.replace("Z", "+00:00")))


def _naive(value: datetime | None) -> datetime | None:
    return None if value is None else _aware(value).astimezone(UTC).replace(tzinfo=None)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------------------------- helpers


def _default_account() -> str:
    return os.environ.get("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)


def _default_region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def _post(endpoint: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    data = json.dumps(body, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v)).encode()
    request = urllib.request.Request(
        endpoint.rstrip("/") + path, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310 - loopback emulator only
            return dict(json.loads(reply.read().decode() or "{}"))
    except urllib.error.HTTPError as err:
        try:
            reason = json.loads(err.read().decode()).get("error") or str(err)
        except ValueError:
            reason = str(err)
        raise EmulatorError(reason) from err
    except OSError as err:
        raise EmulatorError(f"emulator at {endpoint} is unreachable: {err}") from err


def set_training_job_state(
    name: str,
    *,
    status: str | None = None,
    secondary_status: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    creation: datetime | None = None,
    billable_seconds: int | None = None,
    failure_reason: str | None = None,
    final_metrics: dict[str, float] | None = None,
    account_id: str | None = None,
    region: str | None = None,
    endpoint: str | None = None,
) -> dict[str, Any]:
    """Move an emulated training job on; returns the fields that DescribeTrainingJob will now report.

    ``TrainingTimeInSeconds`` follows from ``start``/``end``; ``BillableTimeInSeconds`` defaults to it.
    With ``endpoint`` the change goes over HTTP to a moto server in another process.
    """
    body: dict[str, Any] = {
        "name": name,
        "status": status,
        "secondary_status": secondary_status,
        "start": start,
        "end": end,
        "creation": creation,
        "billable_seconds": billable_seconds,
        "failure_reason": failure_reason,
        "final_metrics": final_metrics,
        "account_id": account_id or _default_account(),
        "region": region or _default_region(),
    }
    if endpoint:
        return _post(endpoint, STATE_PATH, body)
    return _apply_state(body)


def _apply_state(body: dict[str, Any]) -> dict[str, Any]:
    from moto.sagemaker.models import sagemaker_backends

    backend = sagemaker_backends[body["account_id"]][body["region"]]
    job: Any = backend.training_jobs.get(body["name"])
    if job is None:
        raise EmulatorError(f"no training job {body['name']!r} in {body['account_id']}/{body['region']}")
    status = body.get("status")
    if status is not None and status not in JOB_STATUSES:
        raise EmulatorError(f"unknown training job status {status!r}; one of {', '.join(JOB_STATUSES)}")
    # moto keeps naive UTC datetimes (its utcnow()) and compares them with request values: stay naive
    now = _naive(datetime.now(UTC))
    creation, start, end = (_naive(_parse_time(body.get(k))) for k in ("creation", "start", "end"))
    if creation:
        job.creation_time = creation
        job.secondary_status_transitions[0]["StartTime"] = creation
        _retime_create_event(body["account_id"], body["region"], job.training_job_name, creation)
    if start:
        job.training_start_time = start
    if end:
        job.training_end_time = end
    if status:
        job.training_job_status = status
        if status in {"Completed", "Failed", "Stopped"} and job.training_end_time is None:
            job.training_end_time = now
        if status != "InProgress" and job.training_start_time is None and status != "Stopping":
            job.training_start_time = job.training_end_time or now
        if status == "InProgress" and job.training_start_time is None:
            job.training_start_time = now
    secondary = body.get("secondary_status") or (_SECONDARY_FOR_STATUS.get(status) if status else None)
    if secondary and secondary != job.secondary_status:
        _close_transition(job, job.training_start_time if secondary == "Training" else now)
        job.secondary_status_transitions.append({"Status": secondary, "StartTime": now, "StatusMessage": secondary})
        job.secondary_status = secondary
    if job.training_start_time and job.training_end_time:
        seconds = max(0, int((_aware(job.training_end_time) - _aware(job.training_start_time)).total_seconds()))
        job.training_time_in_seconds = seconds
        job.billable_time_in_seconds = seconds
    if body.get("billable_seconds") is not None:
        job.billable_time_in_seconds = int(body["billable_seconds"])
    if body.get("failure_reason") is not None:
        job.failure_reason = body["failure_reason"]
    if body.get("final_metrics"):
        stamp = job.training_end_time or now
        job.final_metric_data_list = [
            {"MetricName": k, "Value": float(v), "Timestamp": stamp} for k, v in body["final_metrics"].items()
        ]
    job.last_modified_time = now
    return _state_view(job)


def _retime_create_event(account_id: str, region: str, job_name: str, when: datetime) -> None:
    """A job backdated to ``when`` was created then: its CreateTrainingJob event moves with it."""
    for event in _events(_cloudtrail_backend(account_id, region)):
        if event["EventName"] == "CreateTrainingJob" and _matches(event, "ResourceName", job_name):
            event["EventTime"] = _aware(when).timestamp()
            detail = json.loads(event["CloudTrailEvent"])
            detail["eventTime"] = _aware(when).strftime("%Y-%m-%dT%H:%M:%SZ")
            event["CloudTrailEvent"] = json.dumps(detail)


def _close_transition(job: Any, when: datetime | None) -> None:
    if job.secondary_status_transitions and "EndTime" not in job.secondary_status_transitions[-1]:
        job.secondary_status_transitions[-1]["EndTime"] = when or _naive(datetime.now(UTC))


def _state_view(job: Any) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return _aware(value).isoformat() if value else None

    return {
        "TrainingJobName": job.training_job_name,
        "TrainingJobArn": job.arn,
        "TrainingJobStatus": job.training_job_status,
        "SecondaryStatus": job.secondary_status,
        "CreationTime": iso(job.creation_time),
        "TrainingStartTime": iso(job.training_start_time),
        "TrainingEndTime": iso(job.training_end_time),
        "TrainingTimeInSeconds": job.training_time_in_seconds,
        "BillableTimeInSeconds": job.billable_time_in_seconds,
        "FailureReason": job.failure_reason,
    }


def set_cloudtrail_lag(
    seconds: float, *, account_id: str | None = None, region: str | None = None, endpoint: str | None = None
) -> None:
    """Hide CloudTrail events younger than ``seconds`` from LookupEvents (0 delivers everything now)."""
    if seconds < 0:
        raise ValueError("lag must be >= 0 seconds")
    body: dict[str, Any] = {
        "seconds": float(seconds),
        "account_id": account_id or _default_account(),
        "region": region or _default_region(),
    }
    if endpoint:
        _post(endpoint, LAG_PATH, body)
        return
    _cloudtrail_backend(body["account_id"], body["region"])._flopsmeter_lag_seconds = body["seconds"]


def clear_cloudtrail_events(
    job_name: str | None = None,
    *,
    account_id: str | None = None,
    region: str | None = None,
    endpoint: str | None = None,
) -> int:
    """Drop stored events (those naming ``job_name``, or all): emulates a trail that never saw the call."""
    body = {"job_name": job_name, "account_id": account_id or _default_account(), "region": region or _default_region()}
    if endpoint:
        return int(_post(endpoint, CLEAR_PATH, body)["removed"])
    return _clear(body)


def _clear(body: dict[str, Any]) -> int:
    events = _events(_cloudtrail_backend(body["account_id"], body["region"]))
    keep = [e for e in events if body.get("job_name") and not _matches(e, "ResourceName", body["job_name"])]
    removed = len(events) - len(keep)
    events[:] = keep
    return removed


# ---------------------------------------------------------------------------------------------------- HTTP routes


def _route(apply: Any) -> Any:
    def handler(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
        del full_url, headers
        raw = request.body if hasattr(request, "body") and not hasattr(request, "environ") else request.get_data()
        try:
            body = json.loads(raw or b"{}")
            answer = apply(body)
        except (EmulatorError, KeyError, ValueError, TypeError) as err:
            return 400, {"Content-Type": "application/json"}, json.dumps({"error": str(err).strip("'\"")})
        return 200, {"Content-Type": "application/json"}, json.dumps(answer)

    handler.__name__ = f"flopsmeter_{apply.__name__.strip('_')}"
    return handler


def _set_lag_route(body: dict[str, Any]) -> dict[str, Any]:
    set_cloudtrail_lag(float(body["seconds"]), account_id=body.get("account_id"), region=body.get("region"))
    return {"seconds": float(body["seconds"])}


def _clear_route(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "removed": _clear(
            {
                **body,
                "account_id": body.get("account_id") or _default_account(),
                "region": body.get("region") or _default_region(),
            }
        )
    }


def _add_control_routes() -> None:
    from moto.moto_api._internal import urls

    urls.url_paths.setdefault("{0}" + STATE_PATH, _route(_apply_state))
    urls.url_paths.setdefault("{0}" + LAG_PATH, _route(_set_lag_route))
    urls.url_paths.setdefault("{0}" + CLEAR_PATH, _route(_clear_route))


def utc(value: datetime | None = None, **delta: float) -> datetime:
    """A timezone-aware UTC time (now by default), shifted by ``timedelta(**delta)``: handy for job times."""
    return (value or datetime.now(UTC)) + timedelta(**delta)
