"""In-memory fakes of what the classifier service talks to (ports in flopsmeter.ports).

FakeStore follows AuditStore's contract (first write wins, duplicates are no-ops, nothing is ever replaced):
tests/integration/test_store_contract.py runs the same scenarios against both. ``World`` wires every fake into the
service's ``Dependencies`` (and a classifier container) with a fixed clock.
"""

from __future__ import annotations

import copy
import json
import logging
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from flopsmeter import contract
from flopsmeter.audit.record import AuditRecord
from flopsmeter.errors import JobNotFound, PermanentStoreError
from flopsmeter.functions.container import ClassifierContainer
from flopsmeter.ports import MeteredFigures, PutResult, StoredObject, TrailHit
from flopsmeter.service.dependencies import Dependencies, ServiceConfig

ACCOUNT = "123456789012"
REGION = "eu-west-1"
END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DLQ_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/flopsmeter-classifier-dlq"


class Faults:
    """Raise the queued exception on the next call of a named method."""

    def __init__(self) -> None:
        self.queued: dict[str, list[BaseException]] = {}

    def add(self, method: str, error: BaseException, times: int = 1) -> None:
        self.queued.setdefault(method, []).extend([error] * times)

    def check(self, method: str) -> None:
        queue = self.queued.get(method)
        if queue:
            raise queue.pop(0)


class FakeJobs:
    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.tag_map: dict[str, dict[str, str]] = {}
        self.faults = Faults()
        self.pipeline_steps: dict[str, list[str]] = {}  # pipeline execution ARN -> ARNs of the jobs its steps ran
        self.calls: Counter[str] = Counter()

    def add(
        self,
        name: str,
        *,
        status: str = "Completed",
        instance_type: str = "ml.p4d.24xlarge",
        count: int = 1,
        hours: float = 2.0,
        end: datetime = END,
        billable: int | None = None,
        environment: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        failure_reason: str | None = None,
        end_time: bool = True,
        final_metrics: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{name}"
        start = end - timedelta(hours=hours)
        job: dict[str, Any] = {
            "TrainingJobName": name,
            "TrainingJobArn": arn,
            "TrainingJobStatus": status,
            "SecondaryStatus": status,
            "CreationTime": start - timedelta(minutes=5),
            "TrainingStartTime": start,
            "LastModifiedTime": end,
            "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": count},
            "Environment": dict(environment or {}),
        }
        if end_time:
            job["TrainingEndTime"] = end
        if billable is not None:
            job["BillableTimeInSeconds"] = billable
        if failure_reason:
            job["FailureReason"] = failure_reason
        if final_metrics:
            job["FinalMetricDataList"] = [
                {"MetricName": k, "Value": v, "Timestamp": end} for k, v in final_metrics.items()
            ]
        self.jobs[name] = job
        self.tag_map[arn] = dict(tags or {})
        return job

    def describe(self, job_name: str) -> Mapping[str, Any]:
        self.calls["describe"] += 1
        self.faults.check("describe")
        if job_name not in self.jobs:
            raise JobNotFound(f"training job {job_name} does not exist")
        return copy.deepcopy(self.jobs[job_name])

    def tags(self, job_arn: str) -> dict[str, str]:
        self.calls["tags"] += 1
        self.faults.check("tags")
        return dict(self.tag_map.get(job_arn, {}))

    def pipeline_step_jobs(self, execution_arn: str) -> frozenset[str]:
        """The jobs ``pipeline_steps`` says an execution ran (set by a test, as SageMaker Pipelines would)."""
        self.calls["pipeline_step_jobs"] += 1
        self.faults.check("pipeline_step_jobs")
        return frozenset(arn.lower() for arn in self.pipeline_steps.get(execution_arn, ()))

    def recent_terminal_jobs(self, since: datetime) -> Iterator[Mapping[str, Any]]:
        self.faults.check("recent_terminal_jobs")
        for job in self.jobs.values():
            if job["TrainingJobStatus"] in contract.TERMINAL_STATUSES and job["LastModifiedTime"] >= since:
                yield {
                    k: job[k]
                    for k in (
                        "TrainingJobName",
                        "TrainingJobArn",
                        "TrainingJobStatus",
                        "CreationTime",
                        "LastModifiedTime",
                    )
                    if k in job
                } | {"TrainingEndTime": job.get("TrainingEndTime")}


class FakeMeter:
    def __init__(self) -> None:
        self.figures: dict[str, MeteredFigures] = {}
        self.faults = Faults()
        self.windows: list[tuple[str, datetime, datetime]] = []

    def job_metrics(self, job_name: str, start: datetime, end: datetime) -> MeteredFigures:
        self.faults.check("job_metrics")
        self.windows.append((job_name, start, end))
        return self.figures.get(job_name, MeteredFigures())


class FakeTrail:
    def __init__(self) -> None:
        self.hits: dict[str, TrailHit] = {}
        self.faults = Faults()

    def add(self, job_name: str, created: datetime = END - timedelta(hours=2, minutes=5)) -> TrailHit:
        hit = TrailHit(
            event_id=f"ct-{job_name}",
            event_time=created,
            principal_arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/MLEngineer/alice",
            source_ip="203.0.113.10",
            user_agent="aws-sdk-python",
        )
        self.hits[job_name] = hit
        return hit

    def find_create_training_job(self, job_name: str, created: datetime) -> TrailHit | None:
        self.faults.check("find_create_training_job")
        return self.hits.get(job_name)

    def find_launch(self, event_name: str, resource_arn: str, before: datetime) -> TrailHit | None:
        self.faults.check("find_launch")
        return self.hits.get(resource_arn)


class FakeBedrock:
    """Amazon Bedrock model customization jobs (GetModelCustomizationJob-shaped), their tags and creators."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.tag_map: dict[str, dict[str, str]] = {}
        self.hits: dict[str, TrailHit] = {}
        self.faults = Faults()

    def add(
        self,
        name: str,
        *,
        status: str = "Completed",
        base_model: str = "meta.llama3-1-8b-instruct-v1:0",
        customization_type: str = "FINE_TUNING",
        hyper_parameters: dict[str, str] | None = None,
        hours: float = 3.0,
        end: datetime = END,
        tags: dict[str, str] | None = None,
        created_by: str | None = "alice",
    ) -> dict[str, Any]:
        arn = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:model-customization-job/{base_model}/{name[:12]:0<12}"
        job: dict[str, Any] = {
            "jobArn": arn,
            "jobName": name,
            "outputModelName": f"{name}-model",
            "roleArn": f"arn:aws:iam::{ACCOUNT}:role/BedrockCustomization",
            "status": status,
            "creationTime": end - timedelta(hours=hours),
            "lastModifiedTime": end,
            "endTime": end,
            "baseModelArn": f"arn:aws:bedrock:{REGION}::foundation-model/{base_model}",
            "hyperParameters": dict(hyper_parameters or {"epochCount": "2"}),
            "customizationType": customization_type,
            "trainingDataConfig": {"s3Uri": "s3://data/train.jsonl"},
            "outputDataConfig": {"s3Uri": "s3://data/out/"},
        }
        self.jobs[name] = job
        self.tag_map[arn] = dict(tags or {})
        if created_by:
            self.hits[name] = TrailHit(f"ct-{name}", job["creationTime"],
                                       f"arn:aws:sts::{ACCOUNT}:assumed-role/MLEngineer/{created_by}",
                                       "203.0.113.10", "aws-sdk-python")  # fmt: skip
        return job

    def get_job(self, job_identifier: str) -> Mapping[str, Any]:
        self.faults.check("get_job")
        for job in self.jobs.values():
            if job_identifier in (job["jobName"], job["jobArn"]):
                return copy.deepcopy(job)
        raise JobNotFound(f"model customization job {job_identifier} does not exist")

    def tags(self, job_arn: str) -> dict[str, str]:
        return dict(self.tag_map.get(job_arn, {}))

    def find_create_job(self, job_name: str, job_arn: str, created: datetime) -> TrailHit | None:
        self.faults.check("find_create_job")
        return self.hits.get(job_name)

    def recent_terminal_jobs(self, since: datetime) -> Iterator[Mapping[str, Any]]:
        self.faults.check("recent_terminal_jobs")
        for job in self.jobs.values():
            if job["status"] in contract.BEDROCK_TERMINAL_STATUSES:
                yield {k: job[k] for k in ("jobArn", "jobName", "status", "creationTime", "lastModifiedTime",
                                           "endTime", "baseModelArn", "customizationType") if k in job}  # fmt: skip


class FakeBatch:
    """AWS Batch service jobs (DescribeServiceJob-shaped, times in epoch milliseconds as the API gives them) in
    SAGEMAKER_TRAINING job queues; ``other_queues`` are queues of another type (their jobs are never listed)."""

    QUEUE = f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/sm-training"

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.queues: list[str] = [self.QUEUE]
        self.other_queues: list[str] = [f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/ecs"]
        self.faults = Faults()
        self.listed: list[tuple[str, str]] = []  # (queue, status) of every ListServiceJobs listing

    def add(
        self, job_id: str, attempts: list[str], *, status: str = "SUCCEEDED", end: datetime = END,
        hours_per_attempt: float = 1.0, queue: str | None = None, preempted: tuple[str, ...] = (),
    ) -> dict[str, Any]:  # fmt: skip
        """A service job whose attempts ran the named training jobs back to back, ending at ``end``."""
        start = end - timedelta(hours=hours_per_attempt * len(attempts))
        runs = []
        for i, name in enumerate(attempts):
            began = start + timedelta(hours=hours_per_attempt * i)
            runs.append({"serviceResourceId": {"name": "TrainingJobArn",
                                               "value": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{name}"},
                         "startedAt": _ms(began), "stoppedAt": _ms(began + timedelta(hours=hours_per_attempt)),
                         "statusReason": "Preempted" if name in preempted else "Training job completed"})  # fmt: skip
        job: dict[str, Any] = {
            "jobId": job_id, "jobArn": f"arn:aws:batch:{REGION}:{ACCOUNT}:service-job/{job_id}",
            "jobName": f"ft-{job_id}", "jobQueue": queue or self.QUEUE, "serviceJobType": "SAGEMAKER_TRAINING",
            "status": status, "createdAt": _ms(start - timedelta(minutes=5)), "startedAt": _ms(start),
            "attempts": runs, "serviceRequestPayload": json.dumps({"ResourceConfig": {"InstanceType":
                                                                   "ml.p4d.24xlarge", "InstanceCount": 1}}),
        }  # fmt: skip
        if status in contract.BATCH_TERMINAL_STATUSES:
            job["stoppedAt"] = _ms(end)
        self.jobs[job_id] = job
        return job

    def describe_service_job(self, job_id: str) -> Mapping[str, Any]:
        self.faults.check("describe_service_job")
        if job_id not in self.jobs:
            raise JobNotFound(f"AWS Batch service job {job_id} is not known")
        return copy.deepcopy(self.jobs[job_id])

    def sagemaker_training_queues(self) -> list[str]:
        self.faults.check("sagemaker_training_queues")
        return list(self.queues)

    def service_jobs(self, queue: str, status: str) -> Iterator[Mapping[str, Any]]:
        """ListServiceJobs' summary members only (no attempts, no payload)."""
        self.listed.append((queue, status))
        self.faults.check("service_jobs")
        summary = ("jobId", "jobArn", "jobName", "serviceJobType", "status", "statusReason", "createdAt",
                   "startedAt", "stoppedAt")  # fmt: skip
        for job in self.jobs.values():
            if job["jobQueue"] == queue and job["status"] == status:
                yield {k: job[k] for k in summary if k in job}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class FakeStore:
    """AuditStore semantics in memory: If-None-Match (first write wins), nothing replaced or deleted."""

    def __init__(self, bucket: str = "audit-test") -> None:
        self.bucket = bucket
        self.objects: dict[str, bytes] = {}
        self.faults = Faults()
        self.writes = 0

    def exists(self, key: str) -> bool:
        self.faults.check("exists")
        return key in self.objects

    def put_immutable(
        self, key: str, body: bytes, *, content_type: str = "application/json", metadata: dict[str, str] | None = None
    ) -> tuple[bool, str | None, datetime]:
        self.faults.check("put_immutable")
        until = datetime.now(UTC) + timedelta(days=3660)
        if key in self.objects:
            return False, None, until
        self.objects[key] = body
        self.writes += 1
        return True, f"v{self.writes}", until

    def put_record(self, key: str, record: AuditRecord) -> PutResult:
        self.faults.check("put_record")
        sealed = record if record.sha256 else record.sealed()
        written, version, until = self.put_immutable(key, sealed.to_json_bytes())
        return PutResult(key, written, version, sealed.sha256, until)

    def get(self, key: str) -> StoredObject:
        self.faults.check("get")
        if key not in self.objects:
            raise PermanentStoreError(f"reading s3://{self.bucket}/{key}: NoSuchKey (fake)")
        return StoredObject(key, self.objects[key], f"v-{key}", None)

    def get_if_exists(self, key: str) -> StoredObject | None:
        self.faults.check("get_if_exists")
        return StoredObject(key, self.objects[key], f"v-{key}", None) if key in self.objects else None

    def get_record(self, key: str) -> AuditRecord:
        self.faults.check("get_record")
        return AuditRecord.model_validate(json.loads(self.get(key).body))

    def list_keys(self, prefix: str) -> Iterator[dict[str, Any]]:
        for key in sorted(k for k in self.objects if k.startswith(prefix)):
            yield {"Key": key, "Size": len(self.objects[key])}

    def records(self) -> dict[str, AuditRecord]:
        return {
            k: AuditRecord.model_validate(json.loads(v)) for k, v in self.objects.items() if k.startswith("records/")
        }


class FakePublisher:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.alerts: list[tuple[str, str, dict[str, str]]] = []
        self.faults = Faults()

    def recorded(self, detail: Mapping[str, Any], *, resources: list[str]) -> None:
        self.faults.check("recorded")
        self.events.append(dict(detail))

    def alert(self, subject: str, message: str, attributes: Mapping[str, str]) -> None:
        self.faults.check("alert")
        self.alerts.append((subject, message, dict(attributes)))


class FakeMetrics:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.counts[name] += int(value)


class FakeSqs:
    """The one SQS call the function makes (SendMessage), recorded; ``refuse`` makes it fail like AWS would."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.refuse: str | None = None  # an AWS error code, e.g. "AccessDenied"

    def send_message(self, **kwargs: object) -> dict:
        if self.refuse:
            raise ClientError({"Error": {"Code": self.refuse, "Message": "refused (test)"}}, "SendMessage")
        self.sent.append(dict(kwargs))
        return {"MessageId": f"dlq-{len(self.sent)}"}


class World:
    """Every fake, wired into the service's ``Dependencies``; ``now`` is the clock (20 min after ``END``).

    ``container`` is what a function built from settings would hold: tests hand ``lambda: world.container`` to a
    function's ``handler_for`` and may replace it (e.g. to add a dead-letter queue).
    """

    def __init__(self) -> None:
        self.jobs, self.meter, self.trail = FakeJobs(), FakeMeter(), FakeTrail()
        self.store, self.publisher, self.metrics = FakeStore(), FakePublisher(), FakeMetrics()
        self.bedrock = FakeBedrock()
        self.now = END + timedelta(minutes=20)
        self.config = ServiceConfig(cloudtrail_max_wait_seconds=3600, parent_max_wait_seconds=3600)
        self.deps = Dependencies(
            jobs=self.jobs,
            meter=self.meter,
            trail=self.trail,
            store=self.store,
            publisher=self.publisher,
            metrics=self.metrics,
            log=logging.getLogger("flopsmeter.test"),
            clock=lambda: self.now,
            bedrock=self.bedrock,
        )
        self.container = ClassifierContainer(deps=self.deps, config=self.config, dead_letters=None)
