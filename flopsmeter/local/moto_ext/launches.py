"""Training work launched by a person or a service, as the emulator shows it.

* ``CreateHyperParameterTuningJob``, ``StartPipelineExecution`` and ``CreateAutoMLJobV2`` record their CloudTrail
  management event (moto keeps none), like ``CreateTrainingJob`` does (``moto_ext.sagemaker``).
* A job a service launched points at its parent: ``DescribeTrainingJob`` reports ``TuningJobArn`` or
  ``AutoMLJobArn`` for a job moved with ``JobState(launched_by=<parent ARN>)``; a pipeline step carries the
  ``sagemaker:pipeline-execution-arn`` tag it was created with, and ``ListPipelineExecutionSteps`` (which moto
  lacks) lists a step with ``Metadata.TrainingJob.Arn`` for each job moved with
  ``JobState(pipeline_execution=<execution ARN>)``: what SageMaker Pipelines reports of the jobs its steps ran.
"""

from __future__ import annotations

from typing import Any

from flopsmeter.local.moto_ext.cloudtrail import ManagementEvent, caller_identity, record_cloudtrail_event

# API operation -> (moto response method, result key of the created ARN, CloudTrail responseElements key, name param)
LAUNCHES = {
    "CreateHyperParameterTuningJob": (
        "create_hyper_parameter_tuning_job",
        "HyperParameterTuningJobArn",
        "hyperParameterTuningJobArn",
        "HyperParameterTuningJobName",
    ),
    "StartPipelineExecution": (
        "start_pipeline_execution",
        "PipelineExecutionArn",
        "pipelineExecutionArn",
        "PipelineName",
    ),
    "CreateAutoMLJobV2": ("create_auto_ml_job_v2", "AutoMLJobArn", "autoMLJobArn", "AutoMLJobName"),
}
PARENT_FIELD = {"hyper-parameter-tuning-job": "TuningJobArn", "automl-job": "AutoMLJobArn"}


def patch() -> None:
    from moto.sagemaker.responses import SageMakerResponse

    for event_name, (method, result_key, response_key, name_param) in LAUNCHES.items():
        setattr(
            SageMakerResponse,
            method,
            _recording(getattr(SageMakerResponse, method), event_name, result_key, response_key, name_param),
        )
    original_describe = SageMakerResponse.describe_training_job

    def describe_training_job(self: Any) -> Any:
        result = original_describe(self)
        job = self.sagemaker_backend.training_jobs.get(self._get_param("TrainingJobName"))
        parent = getattr(job, "flopsmeter_launched_by", None)
        if parent and isinstance(result.result, dict):
            kind = parent.split(":", 5)[-1].split("/", 1)[0]
            result.result[PARENT_FIELD.get(kind, "TuningJobArn")] = parent
        return result

    SageMakerResponse.describe_training_job = describe_training_job  # type: ignore[method-assign]
    SageMakerResponse.list_pipeline_execution_steps = _list_pipeline_execution_steps  # type: ignore[attr-defined]


def _list_pipeline_execution_steps(self: Any) -> Any:
    """One step per training job a step of this execution ran (an unknown execution: moto's own error)."""
    import json

    arn = self._get_param("PipelineExecutionArn")
    self.sagemaker_backend.describe_pipeline_execution(arn)  # raises for an execution that does not exist
    steps = [
        {
            "StepName": f"Train-{job.training_job_name}",
            "StepStatus": "Succeeded" if job.training_job_status == "Completed" else "Executing",
            "Metadata": {"TrainingJob": {"Arn": job.arn}},
        }
        for job in self.sagemaker_backend.training_jobs.values()
        if getattr(job, "flopsmeter_pipeline_execution", None) == arn
    ]
    return json.dumps({"PipelineExecutionSteps": steps})


def _recording(original: Any, event_name: str, result_key: str, response_key: str, name_param: str) -> Any:
    def call(self: Any) -> Any:
        result = original(self)
        answer = getattr(result, "result", result)
        arn = answer.get(result_key) if isinstance(answer, dict) else None
        if arn:
            record_launch_event(
                self,
                event_name,
                {name_param[0].lower() + name_param[1:]: self._get_param(name_param)},
                {response_key: arn},
            )
        return result

    return call


def record_launch_event(
    response: Any,
    event_name: str,
    request: dict[str, Any],
    elements: dict[str, Any] | None,
    event_source: str = "sagemaker.amazonaws.com",
) -> None:
    """Record the caller's ``event_name`` call as CloudTrail would (principal from moto's STS, source IP, agent)."""
    account_id, region = response.current_account, response.region
    access_key = response.get_access_key() or "AKIAIOSFODNN7EXAMPLE"
    principal_id, arn = caller_identity(account_id, access_key, region)
    request_obj = getattr(response, "request", None)
    record_cloudtrail_event(
        ManagementEvent(
            event_name=event_name,
            event_source=event_source,
            account_id=account_id,
            region=region,
            principal_arn=arn,
            principal_id=principal_id,
            access_key_id=access_key,
            source_ip=getattr(request_obj, "remote_addr", None) or "127.0.0.1",
            user_agent=str(response.headers.get("User-Agent", "")) or "flopsmeter-local",
            request_parameters=request,
            response_elements=elements,
        )
    )
