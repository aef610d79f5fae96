"""AWS Batch job queues of type ``SAGEMAKER_TRAINING`` (issue 26), which moto 5.2 does not know: its CreateJobQueue
wants compute environments and its DescribeJobQueues has no ``jobQueueType``.

After ``patch()``: CreateJobQueue with ``jobQueueType`` ``SAGEMAKER_TRAINING`` (and a ``serviceEnvironmentOrder``)
stores the queue here; any other queue is moto's, as before. DescribeJobQueues answers with both, in botocore 1.44's
output shape (``moto_ext.shapes``), filtered by ``jobQueues`` (names or ARNs) and paged by ``maxResults`` /
``nextToken``. Emulated, not AWS's: the service environments a queue names are not checked to exist.
"""

from __future__ import annotations

import json
from typing import Any

from flopsmeter import contract
from flopsmeter.local.moto_ext.common import backend_store
from flopsmeter.local.moto_ext.shapes import shaped

_STORE = "flopsmeter_service_job_queues"
PAGE_SIZE = 100  # DescribeJobQueues' default (and largest) page


def queues(backend: Any) -> dict[str, dict[str, Any]]:
    """The SAGEMAKER_TRAINING queues of one moto Batch backend, by ARN."""
    return backend_store(backend, _STORE)


def queue_name(name_or_arn: str) -> str:
    return name_or_arn.rsplit("job-queue/", 1)[-1]


def patch() -> None:
    from moto.batch.responses import BatchResponse

    moto_create, moto_describe = BatchResponse.create_job_queue, BatchResponse.describe_job_queues

    def create_job_queue(self: Any) -> str:
        if self._get_param("jobQueueType") != contract.BATCH_SAGEMAKER_TRAINING:
            return str(moto_create(self))
        return _create(self)

    def describe_job_queues(self: Any) -> str:
        return _describe(self, json.loads(moto_describe(self))["jobQueues"])

    BatchResponse.create_job_queue = create_job_queue  # type: ignore[method-assign]
    BatchResponse.describe_job_queues = describe_job_queues  # type: ignore[method-assign]


def _create(self: Any) -> str:
    from moto.batch.exceptions import ClientException

    name, order = self._get_param("jobQueueName"), self._get_param("serviceEnvironmentOrder")
    if not name or self._get_param("priority") is None:
        raise ClientException("jobQueueName and priority must be provided")
    if not order:
        raise ClientException("a SAGEMAKER_TRAINING job queue needs a serviceEnvironmentOrder")
    arn = f"arn:aws:batch:{self.region}:{self.current_account}:job-queue/{name}"
    if arn in queues(self.batch_backend) or self.batch_backend.get_job_queue_by_name(name) is not None:
        raise ClientException(f"Job queue {name} already exists")
    queues(self.batch_backend)[arn] = {
        "jobQueueName": name, "jobQueueArn": arn, "state": self._get_param("state") or "ENABLED", "status": "VALID",
        "priority": self._get_param("priority"), "computeEnvironmentOrder": [], "serviceEnvironmentOrder": order,
        "jobQueueType": contract.BATCH_SAGEMAKER_TRAINING, "tags": self._get_param("tags") or {},
        "schedulingPolicyArn": self._get_param("schedulingPolicyArn"),
    }  # fmt: skip
    return json.dumps(shaped("batch", "CreateJobQueue", {"jobQueueName": name, "jobQueueArn": arn}))


def _describe(self: Any, moto_queues: list[dict[str, Any]]) -> str:
    wanted = {queue_name(q) for q in self._get_param("jobQueues") or []}
    ours = [q for q in queues(self.batch_backend).values() if not wanted or q["jobQueueName"] in wanted]
    found = sorted([*moto_queues, *ours], key=lambda q: str(q["jobQueueName"]))
    start = int(self._get_param("nextToken") or 0)
    size = int(self._get_param("maxResults") or PAGE_SIZE)
    page: dict[str, Any] = {"jobQueues": found[start : start + size]}
    if start + size < len(found):
        page["nextToken"] = str(start + size)
    return json.dumps(shaped("batch", "DescribeJobQueues", page))
