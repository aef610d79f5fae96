"""SageMaker facts of a training job: DescribeTrainingJob, ListTags, ListTrainingJobs, ListPipelineExecutionSteps."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from flopsmeter import contract
from flopsmeter.aws.errors import is_unknown_resource, translate
from flopsmeter.errors import JobNotFound


class SageMakerJobs:
    def __init__(self, client: Any) -> None:
        self.client = client

    def describe(self, job_name: str) -> Mapping[str, Any]:
        try:
            reply = self.client.describe_training_job(TrainingJobName=job_name)
        except ClientError as err:
            if is_unknown_resource(err):  # SageMaker answers "Requested resource not found" this way
                raise JobNotFound(f"training job {job_name} does not exist: {err}") from err
            raise translate(err, f"DescribeTrainingJob {job_name}") from err
        except BotoCoreError as err:
            raise translate(err, f"DescribeTrainingJob {job_name}") from err
        reply.pop("ResponseMetadata", None)
        return dict(reply)

    def tags(self, job_arn: str) -> dict[str, str]:
        tags: dict[str, str] = {}
        try:
            for page in self.client.get_paginator("list_tags").paginate(ResourceArn=job_arn):
                tags.update({str(t["Key"]): str(t.get("Value", "")) for t in page.get("Tags", [])})
        except (ClientError, BotoCoreError) as err:
            raise translate(err, f"ListTags {job_arn}") from err
        return tags

    def recent_terminal_jobs(self, since: datetime) -> Iterator[Mapping[str, Any]]:
        paginator = self.client.get_paginator("list_training_jobs")
        for status in contract.TERMINAL_STATUSES:
            try:
                for page in paginator.paginate(
                    LastModifiedTimeAfter=since, StatusEquals=status, PaginationConfig={"PageSize": 100}
                ):
                    yield from page.get("TrainingJobSummaries", [])
            except (ClientError, BotoCoreError) as err:
                raise translate(err, f"ListTrainingJobs {status} since {since.isoformat()}") from err

    def pipeline_step_jobs(self, execution_arn: str) -> frozenset[str]:
        """The training jobs the steps of a pipeline execution ran (``Metadata.TrainingJob.Arn``, lower-cased);
        empty for an execution that does not exist."""
        found: set[str] = set()
        try:
            for page in self.client.get_paginator("list_pipeline_execution_steps").paginate(
                PipelineExecutionArn=execution_arn
            ):
                for step in page.get("PipelineExecutionSteps", []):
                    arn = step.get("Metadata", {}).get("TrainingJob", {}).get("Arn")
                    if arn:
                        found.add(str(arn).lower())
        except ClientError as err:
            if is_unknown_resource(err):
                return frozenset()
            raise translate(err, f"ListPipelineExecutionSteps {execution_arn}") from err
        except BotoCoreError as err:
            raise translate(err, f"ListPipelineExecutionSteps {execution_arn}") from err
        return frozenset(found)
