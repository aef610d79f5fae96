"""Shared pieces of the service benchmarks (bench/load.py, bench/coldstart.py).

* ``emulator()``: the embedded moto server on 127.0.0.1 (``flopsmeter.local.emulator``, moto_ext installed),
  provisioned like the stack (``flopsmeter.local.provision``).
* ``function_env()``: the environment the CDK stack gives the classifier (names from
  ``flopsmeter.contract.LAMBDA_ENV``), pointed at the emulator, with fake credentials.
* ``register_jobs()``: training jobs created through the SageMaker API (CreateTrainingJob over HTTP, so
  moto_ext records the CloudTrail event) and moved to their final state with ``moto_ext.set_training_job_state``.
* ``percentile()``.

Everything here is emulation: moto stands in for AWS, Lambda's SQS poller is played by the caller.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flopsmeter import contract
from flopsmeter.local import moto_ext
from flopsmeter.local.clients import client
from flopsmeter.local.emulator import Emulator
from flopsmeter.local.provision import LocalResources

FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
ROLE = "arn:aws:iam::{account}:role/SageMakerExecutionRole"
_NOT_SETTINGS = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
}
IMAGE = "763104351884.dkr.ecr.{region}.amazonaws.com/huggingface-pytorch-training:2.1-gpu"


_serialized = threading.Lock()
_lookup_events: list[float] = []  # time.monotonic() of each LookupEvents request the emulator served
_requests: Counter[str] = Counter()


def _request_kind(environ: dict[str, Any], target: str) -> str:
    """A request's service and operation, roughly: the JSON target, the query's Action, or method + path depth."""
    if target:
        return target.rsplit(".", 1)[-1]
    query = str(environ.get("QUERY_STRING", ""))
    action = next((p[7:] for p in query.split("&") if p.startswith("Action=")), None)
    if action:
        return action
    path = str(environ.get("PATH_INFO", ""))
    return f"{environ.get('REQUEST_METHOD')} {'object' if path.count('/') > 1 else 'bucket'}"


def emulator_requests() -> dict[str, int]:
    """How many requests of each kind the emulator in this process served."""
    return dict(_requests)


def lookup_events_times() -> list[float]:
    """When the emulator in this process answered each CloudTrail LookupEvents call (``time.monotonic()``)."""
    return list(_lookup_events)


def serialize_emulator_requests() -> None:
    """One request at a time inside the moto server (bench-only patch of the emulator, not of the service).

    moto's backends are not thread-safe: under concurrent ReceiveMessage/DeleteMessage from several workers the
    threaded server raises ``list.remove(x): x not in list`` and ``Set changed size during iteration`` inside
    moto's SQS model (seen at 5 workers) and answers 500. The server is bound by the GIL anyway, so serving one
    request at a time costs little; workers must not long-poll (``WaitTimeSeconds=0``), or they would hold the lock.
    Each CloudTrail LookupEvents request is time-stamped on the way (``lookup_events_times``).
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    if getattr(DomainDispatcherApplication, "_flopsmeter_serialized", False):
        return
    call = DomainDispatcherApplication.__call__

    def serialized(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        with _serialized:
            target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
            if target.endswith(".LookupEvents"):
                _lookup_events.append(time.monotonic())
            _requests[_request_kind(environ, target)] += 1
            return list(call(self, environ, start_response))

    DomainDispatcherApplication.__call__ = serialized  # type: ignore[method-assign]
    DomainDispatcherApplication._flopsmeter_serialized = True  # type: ignore[attr-defined]


def speed_up_moto() -> None:
    """Remove moto hot spots that make a 10 000-event burst quadratic (bench-only patches of the emulator; the
    answers do not change, only their cost).

    ReceiveMessage is made O(batch) instead of O(batch x queue depth):
    moto 5.2.5 checks each received message's retention through ``get_queue_attributes``, which recomputes every
    attribute, the approximate message counts included (a scan of the whole queue, calling ``utcnow`` per message):
    2-3 s per ReceiveMessage with 2 000 messages waiting, quadratic over a 10 000-event burst. The same check,
    reading the queue's retention period directly, returns the same answer.
    """
    import moto.sqs.models as sqs_models
    from moto.sqs.models import SQSBackend

    if getattr(SQSBackend, "_flopsmeter_fast_retention", False):
        return
    # Every SendMessage recomputes the queue's attributes, approximate counts included: a scan of the queue that
    # asks each message "visible?" / "delayed?", each asking moto's clock (a datetime round trip, ~10 us). The
    # same clock from time.time() (seconds since the epoch, UTC) makes the scan ~20x cheaper.
    slow_millis = sqs_models.unix_time_millis  # type: ignore[attr-defined]

    def fast_millis(dt: Any = None) -> float:
        return time.time() * 1000.0 if dt is None else float(slow_millis(dt))

    sqs_models.unix_time_millis = fast_millis  # type: ignore[attr-defined]

    def valid(self: Any, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > time.time())

    SQSBackend.is_message_valid_based_on_retention_period = valid  # type: ignore[method-assign]
    SQSBackend._flopsmeter_fast_retention = True  # type: ignore[attr-defined]
    # EventBridge -> SQS: moto builds each target's input by compiling the same few JSONPath expressions with a
    # fresh PLY parser per event (~10 ms each); compiled expressions are immutable, so compile each once.
    import jsonpath_ng.ext

    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=256)(jsonpath_ng.ext.parse)  # type: ignore[attr-defined]
    # The server finds each request's backend by listing moto's package directory and stat()-ing every entry,
    # several times per request (a third of the server's time in a profile). The directory does not change.
    import moto.backends

    modules = tuple(moto.backends.list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: modules


@contextlib.contextmanager
def emulator(**provision: Any) -> Iterator[tuple[Emulator, LocalResources]]:
    """A started, provisioned emulator (requests served one at a time); stopped on exit."""
    serialize_emulator_requests()
    speed_up_moto()
    emu = Emulator().start()
    try:
        yield emu, emu.provision(**provision)
    finally:
        emu.stop()


def function_env(resources: LocalResources, *, metrics: bool = True) -> dict[str, str]:
    """The classifier's environment as the stack sets it (LAMBDA_ENV + Powertools), aimed at the emulator."""
    env = {**resources.lambda_env(), **FAKE_CREDENTIALS, "POWERTOOLS_TRACE_DISABLED": "1"}
    if not metrics:
        env["POWERTOOLS_METRICS_DISABLED"] = "1"
    unknown = sorted(set(resources.lambda_env()) - set(contract.LAMBDA_ENV) - _NOT_SETTINGS)
    if unknown:  # the emulator's environment must be the stack's (flopsmeter/functions/settings.py reads them)
        raise RuntimeError(f"function environment has variables the stack does not set: {unknown}")
    return env


@dataclass(frozen=True)
class JobSpec:
    """One emulated training job and how it ended."""

    name: str
    status: str = "Completed"
    instance_type: str = "ml.g5.xlarge"
    count: int = 1
    created: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(hours=3))
    start: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(hours=2, minutes=55))
    end: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(minutes=5))
    environment: dict[str, str] = field(default_factory=dict)
    metered_flops: float | None = None

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def register_jobs(resources: LocalResources, jobs: Sequence[JobSpec], *, threads: int = 4) -> None:
    """CreateTrainingJob (HTTP, so the CloudTrail event is recorded), then the final state and metrics."""
    sagemaker = client("sagemaker", resources.endpoint, resources.region)
    cloudwatch = client("cloudwatch", resources.endpoint, resources.region)

    def create(job: JobSpec) -> None:
        sagemaker.create_training_job(
            TrainingJobName=job.name,
            RoleArn=ROLE.format(account=resources.account_id),
            AlgorithmSpecification={
                "TrainingImage": IMAGE.format(region=resources.region),
                "TrainingInputMode": "File",
            },
            OutputDataConfig={"S3OutputPath": "s3://models/out"},
            ResourceConfig={"InstanceType": job.instance_type, "InstanceCount": job.count, "VolumeSizeInGB": 50},
            StoppingCondition={"MaxRuntimeInSeconds": 5 * 86400},
            Environment=job.environment,
        )
        if job.metered_flops is not None:
            cloudwatch.put_metric_data(
                Namespace=contract.METRICS_NAMESPACE,
                MetricData=[
                    {
                        "MetricName": contract.METRIC_CUMULATIVE_FLOPS,
                        "Dimensions": [{"Name": contract.METRIC_DIMENSION, "Value": job.name}],
                        "Timestamp": job.end - timedelta(minutes=1),
                        "Value": job.metered_flops,
                    }
                ],
            )

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(create, jobs))
    for job in jobs:
        if job.status != "InProgress":
            moto_ext.set_training_job_state(
                job.name,
                moto_ext.JobState(
                    status=job.status,
                    start=job.start,
                    end=job.end,
                    failure_reason="AlgorithmError: injected" if job.status == "Failed" else None,
                ),
                account_id=resources.account_id,
                region=resources.region,
            )
    backdate_create_events(resources, {job.name: job.created for job in jobs})


def backdate_create_events(resources: LocalResources, created: dict[str, datetime]) -> None:
    """Move each job's CreationTime and CloudTrail CreateTrainingJob event to ``created`` in one pass.

    ``set_training_job_state(creation=...)`` does this too, but scans every stored event per job (quadratic at
    10 000 jobs). This reaches into moto_ext's and moto's state directly: bench-only, emulator-only.
    """
    from moto.sagemaker.models import sagemaker_backends

    jobs = sagemaker_backends[resources.account_id][resources.region].training_jobs
    for name, when in created.items():
        job = jobs[name]
        job.creation_time = when
        job.secondary_status_transitions[0]["StartTime"] = when
    events = moto_ext.cloudtrail.stored_events(
        moto_ext.cloudtrail.cloudtrail_backend(resources.account_id, resources.region)
    )
    for event in events:
        if event["EventName"] != "CreateTrainingJob":
            continue
        name = next((str(r.get("ResourceName")) for r in event.get("Resources", [])), "")
        if name in created:
            when = created[name]
            event["EventTime"] = when.timestamp()
            detail = json.loads(event["CloudTrailEvent"])
            detail["eventTime"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
            event["CloudTrailEvent"] = json.dumps(detail)


def state_change_event(
    job: JobSpec, resources: LocalResources, *, status: str | None = None, event_id: str | None = None
) -> dict[str, Any]:
    """A PutEvents entry of SageMaker's "Training Job State Change" (what SageMaker itself would emit)."""
    arn = f"arn:aws:sagemaker:{resources.region}:{resources.account_id}:training-job/{job.name}"
    detail = {
        "TrainingJobName": job.name,
        "TrainingJobArn": arn,
        "TrainingJobStatus": status or job.status,
        "SecondaryStatus": status or job.status,
        "CreationTime": int(job.created.timestamp() * 1000),
        "ResourceConfig": {"InstanceType": job.instance_type, "InstanceCount": job.count, "VolumeSizeInGB": 50},
    }
    if event_id:
        detail["flopsmeterBenchEventId"] = event_id  # extra fields pass through unvalidated, as AWS's may
    return {
        "Source": contract.SAGEMAKER_EVENT_SOURCE,
        "DetailType": contract.TRAINING_JOB_STATE_CHANGE,
        "Detail": json.dumps(detail),
        "Resources": [arn],
    }


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (``pct`` in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
