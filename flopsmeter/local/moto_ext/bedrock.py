"""Amazon Bedrock: a realistic model customization job lifecycle on moto 5.2.5.

What moto does not do, and what ``patch()`` adds (emulated behaviour, not AWS's):

* ``CreateModelCustomizationJob`` stores ``endTime`` and a made-up ``failureMessage`` at creation and drops
  ``customizationConfig``. After ``patch()`` a new job is ``InProgress`` with neither, keeps its
  ``customizationConfig``, and records a ``CreateModelCustomizationJob`` CloudTrail management event (so the
  classifier's provenance lookup finds its creator). ``set_model_customization_job_state`` moves it on.
* ``GetModelCustomizationJob`` finds a job by name only; after ``patch()`` also by its ARN (the event's
  ``jobArn``), and it answers with ISO 8601 times.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from flopsmeter import contract
from flopsmeter.local.moto_ext.cloudtrail import ManagementEvent, caller_identity, record_cloudtrail_event
from flopsmeter.local.moto_ext.common import (
    CONTROL_PREFIX,
    EmulatorError,
    aware,
    default_account,
    default_region,
    parse_time,
    post,
)

BEDROCK_STATE_PATH = f"{CONTROL_PREFIX}/model-customization-job-state"


def patch() -> None:
    from moto.bedrock.responses import BedrockResponse

    original_create = BedrockResponse.create_model_customization_job

    def create_model_customization_job(self: Any) -> str:
        result = original_create(self)
        params = json.loads(self.body)
        job = self.bedrock_backend.model_customization_jobs[params["jobName"]]
        _make_realistic(job, params.get("customizationConfig"))
        _record_create_event(self, job, params)
        return str(result)

    def get_model_customization_job(self: Any) -> str:
        job = _find(self.bedrock_backend, unquote(self.path.split("/")[-1]))
        return json.dumps(job_view(job))

    BedrockResponse.create_model_customization_job = create_model_customization_job  # type: ignore[method-assign]
    BedrockResponse.get_model_customization_job = get_model_customization_job  # type: ignore[method-assign]


def _find(backend: Any, identifier: str) -> Any:
    jobs = backend.model_customization_jobs
    if identifier in jobs:
        return jobs[identifier]
    for job in jobs.values():
        if job.job_arn == identifier:
            return job
    return backend.get_model_customization_job(identifier)  # moto's own ResourceNotFoundException


def _make_realistic(job: Any, customization_config: dict[str, Any] | None) -> None:
    now = datetime.now(UTC)
    job.customization_config = customization_config
    job.status = "InProgress"
    job.failure_message = None
    job.creation_time = job.last_modified_time = now.isoformat()
    job.end_time = None


def job_view(job: Any) -> dict[str, Any]:
    """GetModelCustomizationJob's reply for an emulated job (moto's fields, plus what ``patch`` keeps)."""
    view: dict[str, Any] = job.to_dict()
    for key, value in (
        ("customizationConfig", job.customization_config),
        ("endTime", job.end_time),
        ("failureMessage", job.failure_message),
    ):
        view.pop(key, None)
        if value:
            view[key] = value
    return view


def _record_create_event(response: Any, job: Any, params: dict[str, Any]) -> None:
    account_id, region = response.current_account, response.region
    access_key = response.get_access_key() or "AKIAIOSFODNN7EXAMPLE"
    principal_id, arn = caller_identity(account_id, access_key, region)
    request = {k: v for k, v in params.items() if k not in ("trainingDataConfig", "validationDataConfig")}
    record_cloudtrail_event(
        ManagementEvent(
            event_name=contract.CREATE_MODEL_CUSTOMIZATION_JOB,
            event_source=contract.BEDROCK_CLOUDTRAIL_SOURCE,
            account_id=account_id,
            region=region,
            principal_arn=arn,
            principal_id=principal_id,
            access_key_id=access_key,
            user_agent=str(response.headers.get("User-Agent", "")) or "flopsmeter-local",
            request_parameters=request,
            response_elements={"jobArn": job.job_arn},
            resources=[{"ResourceType": "AWS::Bedrock::ModelCustomizationJob", "ResourceName": job.job_name}],
        )
    )


@dataclass(frozen=True)
class CustomizationJobState:
    """Where to move an emulated Bedrock customization job; None leaves a field as it is."""

    status: str | None = None
    creation: datetime | None = None
    end: datetime | None = None  # default for a terminal status: now
    failure_message: str | None = None
    job_arn: str | None = None  # the job's own ARN (a replayed event's; default: moto's)
    base_model_arn: str | None = None  # the base model's ARN as AWS reports it (default: from the identifier)


def set_model_customization_job_state(
    name: str,
    state: CustomizationJobState,
    *,
    account_id: str | None = None,
    region: str | None = None,
    endpoint: str | None = None,
) -> dict[str, Any]:
    """Move an emulated Bedrock job on; returns what GetModelCustomizationJob will now report. With ``endpoint``
    the change goes over HTTP to a moto server in another process."""
    body: dict[str, Any] = {
        "name": name,
        **asdict(state),
        "account_id": account_id or default_account(),
        "region": region or default_region(),
    }
    if endpoint:
        return post(endpoint, BEDROCK_STATE_PATH, body)
    return apply_bedrock_state(body)


def apply_bedrock_state(body: dict[str, Any]) -> dict[str, Any]:
    from moto.bedrock.models import bedrock_backends

    backend = bedrock_backends[body["account_id"]][body["region"]]
    job = backend.model_customization_jobs.get(body["name"])
    if job is None:
        raise EmulatorError(f"no model customization job {body['name']!r} in {body['account_id']}/{body['region']}")
    status = body.get("status")
    if status is not None and status not in contract.JOB_STATUSES:
        raise EmulatorError(f"unknown customization job status {status!r}; one of {', '.join(contract.JOB_STATUSES)}")
    now = datetime.now(UTC)
    creation, end = parse_time(body.get("creation")), parse_time(body.get("end"))
    if creation:
        job.creation_time = aware(creation).isoformat()
    if status:
        job.status = status
        if status in contract.BEDROCK_TERMINAL_STATUSES:
            job.end_time = aware(end or now).isoformat()
    if body.get("failure_message") is not None:
        job.failure_message = body["failure_message"]
    if body.get("job_arn"):
        job.job_arn = str(body["job_arn"])
    if body.get("base_model_arn"):
        job.base_model_arn = str(body["base_model_arn"])
    job.last_modified_time = now.isoformat()
    return job_view(job)
