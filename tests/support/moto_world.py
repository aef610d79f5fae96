"""The classifier's real adapters against moto (in-process ``mock_aws``): the ``Aws`` world, its fixtures (``aws``,
``_clients``: imported by the integration and reliability conftests), events and fault injection.

Emulated, not AWS: moto enforces Object Lock COMPLIANCE and ``If-None-Match`` on S3, stores CloudWatch metric
data, routes EventBridge rules to SQS and SNS to SQS, and applies SQS redrive policies. moto 5.2.5 lacks
DescribeTrainingJob's Environment/BillableTimeInSeconds/lifecycle and CloudTrail LookupEvents:
``flopsmeter.local.moto_ext`` (installed here) adds them, so the same boto3 code paths run.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from moto import mock_aws

from flopsmeter import contract
from flopsmeter.aws.cloudtrail import CreateTrainingJobTrail
from flopsmeter.aws.metrics import JobMetrics
from flopsmeter.aws.notifier import Notifier
from flopsmeter.aws.sagemaker import SageMakerJobs
from flopsmeter.aws.store import AuditStore
from flopsmeter.local import moto_ext
from flopsmeter.service.dependencies import Dependencies, ServiceConfig

REGION = "eu-west-1"
ACCOUNT = "123456789012"
BUCKET = "flopsmeter-audit-it"


class CountingMetrics:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.counts[name] += int(value)


@dataclass
class Aws:
    clients: dict[str, Any]
    recorded_queue: str
    alerts_queue: str
    classifier_queue: str
    dlq: str
    topic_arn: str
    t0: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    metrics: CountingMetrics = field(default_factory=CountingMetrics)
    now: datetime | None = None
    handler: Any = None  # a function's Lambda entry point over these clients, when a test wires one
    config: ServiceConfig = field(
        default_factory=lambda: ServiceConfig(cloudtrail_max_wait_seconds=3600, parent_max_wait_seconds=3600)
    )

    def __getitem__(self, service: str) -> Any:
        return self.clients[service]

    @property
    def store(self) -> AuditStore:
        return AuditStore(self["s3"], BUCKET)

    def deps(self) -> Dependencies:
        return Dependencies(
            jobs=SageMakerJobs(self["sagemaker"]),
            meter=JobMetrics(self["cloudwatch"]),
            trail=CreateTrainingJobTrail(self["cloudtrail"]),
            store=self.store,
            publisher=Notifier(self["events"], self["sns"], topic_arn=self.topic_arn),
            metrics=self.metrics,
            log=logging.getLogger("flopsmeter.it"),
            clock=lambda: self.now or datetime.now(UTC),
        )

    def job(
        self,
        name: str,
        *,
        status: str = "Completed",
        instance_type: str = "ml.g5.xlarge",
        count: int = 1,
        hours: float = 1.0,
        environment: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        billable: int | None = None,
        failure_reason: str | None = None,
        started_after_hours: float = 0.0,
        extra: dict[str, Any] | None = None,
    ) -> datetime:
        """Create a training job (emulated lifecycle) that ran ``hours`` from t0 (+ ``started_after_hours``); returns
        its end time. ``extra``: more CreateTrainingJob fields (InputDataConfig, CheckpointConfig, ...)."""
        self["sagemaker"].create_training_job(
            TrainingJobName=name,
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole",
            AlgorithmSpecification={
                "TrainingImage": "123.dkr.ecr.eu-west-1.amazonaws.com/hf:latest",
                "TrainingInputMode": "File",
            },
            OutputDataConfig={"S3OutputPath": "s3://models/out"},
            ResourceConfig={"InstanceType": instance_type, "InstanceCount": count, "VolumeSizeInGB": 50},
            StoppingCondition={"MaxRuntimeInSeconds": 86400},
            Environment=environment or {},
            Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
            **(extra or {}),
        )
        start = self.t0 + timedelta(hours=started_after_hours)
        end = start + timedelta(hours=hours)
        if status != "InProgress":
            moto_ext.set_training_job_state(
                name,
                moto_ext.JobState(
                    status=status, start=start, end=end, billable_seconds=billable, failure_reason=failure_reason
                ),
                account_id=ACCOUNT,
                region=REGION,
            )
        return end

    def meter(
        self,
        name: str,
        values: list[float],
        metric: str = contract.METRIC_CUMULATIVE_FLOPS,
        minutes: list[int] | None = None,
    ) -> None:
        """Datapoints as the meter sends them (each stamped when measured); ``minutes`` after t0+10 min."""
        for i, value in zip(minutes or range(len(values)), values, strict=True):
            self["cloudwatch"].put_metric_data(
                Namespace=contract.METRICS_NAMESPACE,
                MetricData=[
                    {
                        "MetricName": metric,
                        "Dimensions": [{"Name": contract.METRIC_DIMENSION, "Value": name}],
                        "Timestamp": self.t0 + timedelta(minutes=10 + i),
                        "Value": value,
                    }
                ],
            )

    def messages(self, queue: str) -> list[dict[str, Any]]:
        out = []
        while batch := self["sqs"].receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
            for message in batch:
                out.append(json.loads(message["Body"]))
                self["sqs"].delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return out


def state_change(name: str, status: str = "Completed", event_id: str | None = None) -> str:
    """An EventBridge SageMaker Training Job State Change event as SQS delivers it (the body)."""
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{name}"
    return json.dumps(
        {
            "version": "0",
            "id": event_id or str(uuid.uuid4()),
            "detail-type": contract.TRAINING_JOB_STATE_CHANGE,
            "source": contract.SAGEMAKER_EVENT_SOURCE,
            "account": ACCOUNT,
            "time": "2026-11-20T12:00:00Z",
            "region": REGION,
            "resources": [arn],
            "detail": {
                "TrainingJobName": name,
                "TrainingJobArn": arn,
                "TrainingJobStatus": status,
                "SecondaryStatus": status,
                "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1},
            },
        }
    )


def inject_faults(
    client: Any, operation: str, *, times: int = 1, code: str = "ThrottlingException", status: int = 400
) -> dict[str, int]:
    """Fault injection on a real client: the next ``times`` calls of ``operation`` fail with ``code``.

    A ``before-call`` handler that returns a response short-circuits the request (moto is never reached) and
    botocore's retry loop too, so the error reaches our adapters deterministically.
    """
    left = {"remaining": times, "injected": 0}
    service = client.meta.service_model.service_id.hyphenize()

    def fail(**_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if left["remaining"] <= 0:
            return None
        left["remaining"] -= 1
        left["injected"] += 1
        body = {"Error": {"Code": code, "Message": f"injected {code}"}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return AWSResponse("https://injected.invalid", status, {}, None), body

    event = f"before-call.{service}.{operation}"
    client.meta.events.register(event, fail)
    _UNREGISTER.append(lambda: client.meta.events.unregister(event, fail))
    return left


_UNREGISTER: list[Any] = []


@pytest.fixture(scope="session")
def _clients() -> dict[str, Any]:
    """Created once (0.5 s for seven clients); moto intercepts them inside every test's own ``mock_aws``."""
    moto_ext.install()
    with mock_aws():
        return {
            s: boto3.client(s, region_name=REGION)
            for s in ("s3", "sagemaker", "cloudwatch", "cloudtrail", "events", "sns", "sqs")
        }


@pytest.fixture
def aws(_clients: dict[str, Any]) -> Iterator[Aws]:
    clients = dict(_clients)
    with mock_aws():
        s3 = clients["s3"]
        s3.create_bucket(
            Bucket=BUCKET, ObjectLockEnabledForBucket=True, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        s3.put_object_lock_configuration(
            Bucket=BUCKET,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": 10}},
            },
        )
        sqs = clients["sqs"]

        def queue(name: str, **attributes: str) -> tuple[str, str]:
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

        recorded, recorded_arn = queue("recorded-events")
        alerts, alerts_arn = queue("alerts")
        dlq, dlq_arn = queue("classifier-dlq")
        classifier, _ = queue(
            "classifier",
            VisibilityTimeout="0",
            RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}),
        )
        clients["events"].put_rule(
            Name="recorded",
            EventPattern=json.dumps(
                {"source": [contract.RECORDED_EVENT_SOURCE], "detail-type": [contract.RECORDED_EVENT_DETAIL_TYPE]}
            ),
        )
        clients["events"].put_targets(Rule="recorded", Targets=[{"Id": "q", "Arn": recorded_arn}])
        topic = clients["sns"].create_topic(Name="flopsmeter-alerts")["TopicArn"]
        clients["sns"].subscribe(
            TopicArn=topic, Protocol="sqs", Endpoint=alerts_arn, Attributes={"RawMessageDelivery": "false"}
        )
        try:
            yield Aws(clients, recorded, alerts, classifier, dlq, topic)
        finally:
            moto_ext.set_cloudtrail_lag(0, account_id=ACCOUNT, region=REGION)
            while _UNREGISTER:
                _UNREGISTER.pop()()


class WithoutListBucket:
    """An S3 client as a role without ``s3:ListBucket`` sees the bucket: a HEAD or GET of a missing key answers 403
    (AccessDenied), not 404. ``list_denied``: ListObjectsV2 is refused too (the grant's ``s3:prefix`` condition
    does not cover the prefix). Every other call goes to the real client."""

    def __init__(self, s3: Any, *, list_denied: bool = False) -> None:
        self._s3 = s3
        self.list_denied = list_denied

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    @staticmethod
    def _denied(operation: str) -> ClientError:
        return ClientError(
            {"Error": {"Code": "403", "Message": "Forbidden"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, operation
        )

    def head_object(self, **kwargs: Any) -> Any:
        try:
            return self._s3.head_object(**kwargs)
        except ClientError as err:
            if err.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                raise self._denied("HeadObject") from None
            raise

    def list_objects_v2(self, **kwargs: Any) -> Any:
        if self.list_denied:
            raise self._denied("ListObjectsV2")
        return self._s3.list_objects_v2(**kwargs)
