"""AWS Batch service jobs (issue 26 item 2): DescribeServiceJob."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from flopsmeter.aws.errors import translate
from flopsmeter.errors import JobNotFound


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
