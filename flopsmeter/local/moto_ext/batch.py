"""AWS Batch service jobs (issue 26), which moto 5.2 does not serve (it routes by botocore's model, so the new
operations only need their methods).

After ``patch()``: ``SubmitServiceJob`` stores a ``SAGEMAKER_TRAINING`` service job (``SUBMITTED``) and records its
CloudTrail management event (eventSource ``batch.amazonaws.com``: the person who submitted); ``DescribeServiceJob``
answers with botocore 1.44's output shape, and ``ListServiceJobs`` lists one job queue (by name or ARN: required
here) in one ``jobStatus`` (RUNNING when none is given, as AWS Batch does), newest first, paged by ``maxResults`` /
``nextToken``; its ``filters`` are not emulated (refused, never ignored). SAGEMAKER_TRAINING job queues:
``moto_ext.batch_queues``. ``set_service_job_state`` moves a job on as Batch would: a new attempt names the
SageMaker training job that ran it (the caller creates that job, as Batch's service role does), a preempted attempt
moves to ``preemptionSummary``, and every change puts a "Batch Service Job State Change" event on the default bus,
its ``detail`` the DescribeServiceJob shape without ``tags`` and ``serviceRequestPayload`` (AWS Batch User Guide,
"Service job state change events").
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from flopsmeter import contract
from flopsmeter.local.moto_ext.batch_queues import patch as patch_queues
from flopsmeter.local.moto_ext.batch_queues import queue_name
from flopsmeter.local.moto_ext.cloudtrail import repoint_cloudtrail_event, retime_cloudtrail_event
from flopsmeter.local.moto_ext.common import (
    CONTROL_PREFIX,
    EmulatorError,
    backend_store,
    default_account,
    default_region,
    parse_time,
    post,
)
from flopsmeter.local.moto_ext.launches import record_launch_event
from flopsmeter.local.moto_ext.shapes import shaped

SERVICE_JOB_STATE_PATH = f"{CONTROL_PREFIX}/batch-service-job-state"
_STORE = "flopsmeter_service_jobs"
NOT_IN_EVENT = ("tags", "serviceRequestPayload")  # the documented event leaves these out


def _jobs(backend: Any) -> dict[str, dict[str, Any]]:
    return backend_store(backend, _STORE)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def patch() -> None:
    from moto.batch.responses import BatchResponse

    BatchResponse.submit_service_job = _submit  # type: ignore[attr-defined]
    BatchResponse.describe_service_job = _describe  # type: ignore[attr-defined]
    BatchResponse.list_service_jobs = _list  # type: ignore[attr-defined]
    patch_queues()


def _submit(self: Any) -> str:
    job_id = str(uuid.uuid4())
    arn = f"arn:aws:batch:{self.region}:{self.current_account}:service-job/{job_id}"
    now = datetime.now(UTC)
    params = {
        k: self._get_param(k)
        for k in (
            "jobName",
            "jobQueue",
            "retryStrategy",
            "schedulingPriority",
            "serviceRequestPayload",
            "serviceJobType",
            "shareIdentifier",
            "quotaShareName",
            "preemptionConfiguration",
            "timeoutConfig",
            "tags",
        )
    }
    _jobs(self.batch_backend)[job_id] = {
        **{k: v for k, v in params.items() if v is not None}, "jobId": job_id, "jobArn": arn, "status": "SUBMITTED",
        "createdAt": _ms(now), "startedAt": _ms(now), "attempts": [], "account": self.current_account,
        "region": self.region,
    }  # fmt: skip
    request = {k: params[k] for k in ("jobName", "jobQueue", "serviceJobType", "shareIdentifier") if params[k]}
    answer = {"jobArn": arn, "jobName": params["jobName"], "jobId": job_id}
    record_launch_event(
        self, contract.SUBMIT_SERVICE_JOB, request, answer, event_source=contract.BATCH_API_EVENT_SOURCE
    )
    return json.dumps(shaped("batch", "SubmitServiceJob", answer))


def _describe(self: Any) -> str:
    from moto.batch.exceptions import ClientException

    job = _jobs(self.batch_backend).get(self._get_param("jobId"))
    if job is None:
        raise ClientException(f"Service job {self._get_param('jobId')} not found")
    return json.dumps(shaped("batch", "DescribeServiceJob", job))


def _list(self: Any) -> str:
    from moto.batch.exceptions import ClientException

    queue, status = self._get_param("jobQueue"), self._get_param("jobStatus") or "RUNNING"
    if not queue:
        raise ClientException("jobQueue must be provided")
    if self._get_param("filters"):
        raise ClientException("ListServiceJobs filters are not emulated")
    wanted = queue_name(str(queue))
    found = sorted(
        (j for j in _jobs(self.batch_backend).values()
         if queue_name(str(j.get("jobQueue", ""))) == wanted and j["status"] == status),
        key=lambda j: -int(j["createdAt"]),
    )  # fmt: skip
    start, size = int(self._get_param("nextToken") or 0), int(self._get_param("maxResults") or 100)
    page: dict[str, Any] = {"jobSummaryList": found[start : start + size]}
    if start + size < len(found):
        page["nextToken"] = str(start + size)
    return json.dumps(shaped("batch", "ListServiceJobs", page))


@dataclass(frozen=True)
class ServiceJobState:
    """Where to move an emulated service job; None leaves a field as it is."""

    status: str | None = None
    attempt_started: str | None = None  # a new attempt ran this training job (its ARN)
    attempt_stopped_reason: str | None = None  # the latest attempt stopped, with this statusReason
    preempted: bool = False  # ... because it was preempted (it moves to preemptionSummary)
    status_reason: str | None = None
    at: datetime | None = None  # when this change happened (default: now): attempts' startedAt / stoppedAt
    created: datetime | None = None  # backdates the submission (createdAt) and its SubmitServiceJob event
    replayed: dict[str, Any] | None = None  # a replayed event's detail: the job takes its id, ARN, attempts, times
    emit: bool = True  # put the state-change event on the bus (a replay puts the event it was given instead)


def set_service_job_state(
    job_id: str, state: ServiceJobState, *, account_id: str | None = None, region: str | None = None,
    endpoint: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Move an emulated service job on and emit its state-change event; returns what DescribeServiceJob reports."""
    body = {"job_id": job_id, **asdict(state), "account_id": account_id or default_account(),
            "region": region or default_region()}  # fmt: skip
    if endpoint:
        return post(endpoint, SERVICE_JOB_STATE_PATH, body)
    return apply_service_job_state(body)


def apply_service_job_state(body: dict[str, Any]) -> dict[str, Any]:
    from moto.batch.models import batch_backends

    store = _jobs(batch_backends[body["account_id"]][body["region"]])
    job = store.get(body["job_id"])
    if job is None:
        raise EmulatorError(f"no service job {body['job_id']!r} in {body['account_id']}/{body['region']}")
    if body.get("replayed"):
        job = _adopt(store, job, body["replayed"])
    status = body.get("status")
    if status is not None and status not in contract.BATCH_SERVICE_JOB_STATUSES:
        raise EmulatorError(f"unknown service job status {status!r}")
    now = _ms(parse_time(body.get("at")) or datetime.now(UTC))
    if body.get("created"):
        created = parse_time(body["created"]) or datetime.now(UTC)
        job["createdAt"] = job["startedAt"] = _ms(created)
        retime_cloudtrail_event(job["jobArn"], created, account_id=body["account_id"], region=body["region"])
    if body.get("attempt_stopped_reason") and job["attempts"]:
        _stop_attempt(job, str(body["attempt_stopped_reason"]), bool(body.get("preempted")), now)
    if body.get("attempt_started"):
        ref = {"name": "TrainingJobArn", "value": str(body["attempt_started"])}
        job["attempts"].append({"serviceResourceId": ref, "startedAt": now})
        job["latestAttempt"] = {"serviceResourceId": ref}
    if status:
        job["status"] = status
        if status in contract.BATCH_TERMINAL_STATUSES:
            job["stoppedAt"] = now
            job["isTerminated"] = False
    if body.get("status_reason"):
        job["statusReason"] = str(body["status_reason"])
    if body.get("emit", True):
        _emit(job)
    return shaped("batch", "DescribeServiceJob", job)


def _adopt(store: dict[str, dict[str, Any]], job: dict[str, Any], detail: dict[str, Any]) -> dict[str, Any]:
    """``job`` takes a replayed event's id, ARN and state (the DescribeServiceJob members the event carries); the
    SubmitServiceJob call recorded for it follows to the event's ARN."""
    import botocore.session

    shape = botocore.session.get_session().get_service_model("batch").operation_model("DescribeServiceJob")
    members = set(shape.output_shape.members) - set(NOT_IN_EVENT)  # type: ignore[union-attr]
    old_id, old_arn = job["jobId"], job["jobArn"]
    job.update({k: v for k, v in detail.items() if k in members and v is not None})
    if "jobArn" not in detail:
        job["jobArn"] = f"arn:aws:batch:{job['region']}:{job['account']}:service-job/{job['jobId']}"
    del store[old_id]
    store[job["jobId"]] = job
    where = {"account_id": job["account"], "region": job["region"]}
    repoint_cloudtrail_event(old_arn, job["jobArn"], {old_id: job["jobId"]}, **where)
    submitted = parse_time(float(job["createdAt"]) / 1000.0) if isinstance(job.get("createdAt"), int | float) else None
    if submitted is not None:  # the submission's CloudTrail event at the event's createdAt
        retime_cloudtrail_event(job["jobArn"], submitted, **where)
    return job


def _stop_attempt(job: dict[str, Any], reason: str, preempted: bool, now: int) -> None:
    latest = job["attempts"][-1]
    latest.setdefault("stoppedAt", now)
    latest["statusReason"] = reason
    if preempted:
        summary = job.setdefault("preemptionSummary", {"preemptedAttemptCount": 0, "recentPreemptedAttempts": []})
        summary["preemptedAttemptCount"] += 1
        summary["recentPreemptedAttempts"].append(dict(latest))


def service_job_event(job: dict[str, Any]) -> dict[str, Any]:
    """The "Batch Service Job State Change" event of ``job`` as EventBridge delivers it."""
    detail = {k: v for k, v in shaped("batch", "DescribeServiceJob", job).items() if k not in NOT_IN_EVENT}
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": contract.BATCH_SERVICE_JOB_STATE_CHANGE,
        "source": contract.BATCH_EVENT_SOURCE, "account": job["account"], "region": job["region"],
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "resources": [job["jobArn"]], "detail": detail,
    }  # fmt: skip


def _emit(job: dict[str, Any]) -> None:
    from moto.events.models import events_backends

    event = service_job_event(job)
    events_backends[job["account"]][job["region"]].put_events([{
        "Source": event["source"], "DetailType": event["detail-type"], "Detail": json.dumps(event["detail"]),
        "Resources": event["resources"], "EventBusName": "default",
    }])  # fmt: skip
