"""SageMaker: realistic CreateTrainingJob (InProgress, Environment and MetricDefinitions kept, duplicate names
refused, a CloudTrail event recorded) and ``set_training_job_state`` to move a job through its lifecycle."""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from flopsmeter.contract import JOB_STATUSES, TERMINAL_STATUSES
from flopsmeter.local.moto_ext.cloudtrail import (
    ManagementEvent,
    caller_identity,
    cloudtrail_backend,
    matches,
    record_cloudtrail_event,
    stored_events,
)
from flopsmeter.local.moto_ext.common import (
    STATE_PATH,
    EmulatorError,
    aware,
    default_account,
    default_region,
    naive,
    parse_time,
    post,
)

_SECONDARY_FOR_STATUS = {
    "InProgress": "Training",
    "Completed": "Completed",
    "Failed": "Failed",
    "Stopping": "Stopping",
    "Stopped": "Stopped",
}


def patch() -> None:
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
        if self._get_param("AlgorithmSpecification") is None:  # a serverless customization job has none
            self.params["AlgorithmSpecification"] = {"TrainingInputMode": "File"}  # moto needs one to store
        own_definitions = copy.deepcopy((self._get_param("AlgorithmSpecification") or {}).get("MetricDefinitions"))
        result = original(self)  # moto overwrites MetricDefinitions in the request's own dict
        job = backend.training_jobs[name]
        _make_realistic(job, self._get_param("Environment"), own_definitions)
        job.serverless_job_config = self._get_param("ServerlessJobConfig")  # kept (DescribeTrainingJob serves it)
        _keep_model_package_config(job, self._get_param("ModelPackageConfig"))
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


def _keep_model_package_config(job: Any, config: dict[str, str] | None) -> None:
    """moto drops ModelPackageConfig (serverless customization); DescribeTrainingJob reports it, and a Completed
    job with a model package group gets OutputModelPackageArn (``apply_state``)."""
    job.model_package_config = dict(config) if config else None
    job.output_model_package_arn = None


def _register_output_package(backend: Any, job: Any) -> None:
    """The model package version a completed customization job registers in its group (``…/<group>/<n>``)."""
    group = (getattr(job, "model_package_config", None) or {}).get("ModelPackageGroupArn")
    if job.training_job_status != "Completed" or not group or getattr(job, "output_model_package_arn", None):
        return
    base = group.replace(":model-package-group/", ":model-package/", 1)
    taken = sum(
        1 for j in backend.training_jobs.values() if str(getattr(j, "output_model_package_arn", "")).startswith(base)
    )
    job.output_model_package_arn = f"{base}/{taken + 1}"


def _record_create_event(response: Any, job: Any) -> None:
    account_id, region = response.current_account, response.region
    access_key = response.get_access_key() or "AKIAIOSFODNN7EXAMPLE"
    principal_id, arn = caller_identity(account_id, access_key, region)
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
        ManagementEvent(
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
    )


@dataclass(frozen=True)
class JobState:
    """Where to move an emulated training job; None leaves a field as it is (or derives it, see below)."""

    status: str | None = None
    secondary_status: str | None = None  # default: the one that goes with ``status``
    start: datetime | None = None
    end: datetime | None = None
    creation: datetime | None = None  # backdates the job and its CreateTrainingJob event
    billable_seconds: int | None = None  # default: the training seconds (end - start)
    failure_reason: str | None = None
    final_metrics: dict[str, float] = field(default_factory=dict)  # FinalMetricDataList: name -> value
    billable_tokens: int | None = None  # BillableTokenCount (serverless customization jobs)
    launched_by: str | None = None  # a tuning job's or AutoML job's ARN: DescribeTrainingJob reports it
    pipeline_execution: str | None = None  # the execution whose step ran it: ListPipelineExecutionSteps reports it
    model_artifacts: str | None = None  # ModelArtifacts.S3ModelArtifacts (default: moto's <output>/<job>/output/...)
    output_model_package: str | None = None  # OutputModelPackageArn (default: the next version in its group)


def set_training_job_state(
    name: str,
    state: JobState,
    *,
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
        **asdict(state),
        "account_id": account_id or default_account(),
        "region": region or default_region(),
    }
    if endpoint:
        return post(endpoint, STATE_PATH, body)
    return apply_state(body)


def apply_state(body: dict[str, Any]) -> dict[str, Any]:
    from moto.sagemaker.models import sagemaker_backends

    backend = sagemaker_backends[body["account_id"]][body["region"]]
    job: Any = backend.training_jobs.get(body["name"])
    if job is None:
        raise EmulatorError(f"no training job {body['name']!r} in {body['account_id']}/{body['region']}")
    status = body.get("status")
    if status is not None and status not in JOB_STATUSES:
        raise EmulatorError(f"unknown training job status {status!r}; one of {', '.join(JOB_STATUSES)}")
    # moto keeps naive UTC datetimes (its utcnow()) and compares them with request values: stay naive
    now = naive(datetime.now(UTC))
    creation, start, end = (naive(parse_time(body.get(k))) for k in ("creation", "start", "end"))
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
        if status in TERMINAL_STATUSES and job.training_end_time is None:
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
        seconds = max(0, int((aware(job.training_end_time) - aware(job.training_start_time)).total_seconds()))
        job.training_time_in_seconds = seconds
        job.billable_time_in_seconds = seconds
    _register_output_package(backend, job)
    _apply_reported(job, body, now)
    job.last_modified_time = now
    return _state_view(job)


def _apply_reported(job: Any, body: dict[str, Any], now: datetime | None) -> None:
    """What the job reports besides its lifecycle: billable time and tokens, failure reason, final metrics."""
    if body.get("billable_seconds") is not None:
        job.billable_time_in_seconds = int(body["billable_seconds"])
    if body.get("failure_reason") is not None:
        job.failure_reason = body["failure_reason"]
    if body.get("billable_tokens") is not None:
        job.billable_token_count = int(body["billable_tokens"])
    if body.get("final_metrics"):
        stamp = job.training_end_time or now
        job.final_metric_data_list = [
            {"MetricName": k, "Value": float(v), "Timestamp": stamp} for k, v in body["final_metrics"].items()
        ]
    if body.get("launched_by"):
        job.flopsmeter_launched_by = str(body["launched_by"])
    if body.get("pipeline_execution"):
        job.flopsmeter_pipeline_execution = str(body["pipeline_execution"])
    if body.get("model_artifacts"):
        job.model_artifacts = {"S3ModelArtifacts": str(body["model_artifacts"])}
    if body.get("output_model_package"):
        job.output_model_package_arn = str(body["output_model_package"])


def _retime_create_event(account_id: str, region: str, job_name: str, when: datetime) -> None:
    """A job backdated to ``when`` was created then: its CreateTrainingJob event moves with it."""
    for event in stored_events(cloudtrail_backend(account_id, region)):
        if event["EventName"] == "CreateTrainingJob" and matches(event, "ResourceName", job_name):
            event["EventTime"] = aware(when).timestamp()
            detail = json.loads(event["CloudTrailEvent"])
            detail["eventTime"] = aware(when).strftime("%Y-%m-%dT%H:%M:%SZ")
            event["CloudTrailEvent"] = json.dumps(detail)


def _close_transition(job: Any, when: datetime | None) -> None:
    if job.secondary_status_transitions and "EndTime" not in job.secondary_status_transitions[-1]:
        job.secondary_status_transitions[-1]["EndTime"] = when or naive(datetime.now(UTC))


def _state_view(job: Any) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return aware(value).isoformat() if value else None

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
