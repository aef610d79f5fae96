"""AWS Batch service jobs (issue 26 item 2): DescribeServiceJob, and for the reconciler the SageMaker training job
queues (DescribeJobQueues) and the service jobs each holds in a status (ListServiceJobs)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from flopsmeter import contract
from flopsmeter.aws.errors import translate
from flopsmeter.errors import JobNotFound

PAGE_SIZE = 100  # the most either listing returns in one page


class BatchServiceJobs:
    def __init__(self, client: Any) -> None:
        self.client = client

    def describe_service_job(self, job_id: str) -> Mapping[str, Any]:
        try:
            reply = self.client.describe_service_job(jobId=job_id)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("ClientException", "ResourceNotFoundException"):
                raise JobNotFound(f"AWS Batch service job {job_id} is not known: {err}") from err
            raise translate(err, f"DescribeServiceJob {job_id}") from err
        except BotoCoreError as err:
            raise translate(err, f"DescribeServiceJob {job_id}") from err
        reply.pop("ResponseMetadata", None)
        return dict(reply)

    def sagemaker_training_queues(self) -> list[str]:
        """The ARNs of every job queue of type ``SAGEMAKER_TRAINING`` (enabled or not: a disabled queue's jobs ended
        too)."""
        pages = self.client.get_paginator("describe_job_queues").paginate(PaginationConfig={"PageSize": PAGE_SIZE})
        try:
            return [
                str(queue["jobQueueArn"])
                for page in pages
                for queue in page.get("jobQueues", [])
                if queue.get("jobQueueType") == contract.BATCH_SAGEMAKER_TRAINING and queue.get("jobQueueArn")
            ]
        except (ClientError, BotoCoreError) as err:
            raise translate(err, "DescribeJobQueues") from err

    def service_jobs(self, queue: str, status: str) -> Iterator[Mapping[str, Any]]:
        """ListServiceJobs summaries of ``queue`` in ``status``, page by page (an error names the queue and status)."""
        pages = self.client.get_paginator("list_service_jobs").paginate(
            jobQueue=queue, jobStatus=status, PaginationConfig={"PageSize": PAGE_SIZE}
        )
        try:
            for page in pages:
                yield from page.get("jobSummaryList", [])
        except (ClientError, BotoCoreError) as err:
            raise translate(err, f"ListServiceJobs {queue} {status}") from err
