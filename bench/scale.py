"""``make bench-scale``: who launched each job, at thousands of jobs an hour, on the emulator in simulated time (JSON).

N training jobs are launched at an even rate over ``--hours`` of simulated time through the SageMaker API of the
in-process emulator (moto + ``flopsmeter.local.moto_ext``): a share by hyper-parameter tuning jobs (trials carry
``TuningJobArn``), a share by pipeline executions (steps carry the ``sagemaker:pipeline-execution-arn`` tag, which
the execution's ListPipelineExecutionSteps confirms), the rest directly by people. With ``--trail on`` a trail is
logging, so every launch call reaches EventBridge as "AWS API Call via CloudTrail"; the provenance rule
(``contract.training_launch_pattern``) feeds a queue drained into ``capture_launch`` (the provenance function's
body). Each job ends ``--job-minutes`` after its launch and is classified (``classify_and_record`` over the real
boto3 adapters) a minute later; a transient failure (CloudTrail not there, LookupEvents throttled) is retried after
the stack's visibility timeout, as SQS would.

CloudTrail's LookupEvents quota (2 requests/s per account and region) is emulated on the simulated clock
(``moto_ext.cloudtrail.RateLimit``), and the classifier's ``LookupBudget`` sleeps on the same clock: nothing waits
for real. Every AWS call the service makes is counted per operation (botocore ``before-call``).

    python -m bench.scale                       # 3 000 jobs in one hour, trail on
    python -m bench.scale --trail off --jobs 300

Emulated, not AWS: moto's services; Lambda and SQS are played in process (their request counts are derived from
the stack's batch size, see ``derived_calls``).
"""

from __future__ import annotations

import argparse
import heapq
import json
import logging
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from flopsmeter import contract
from flopsmeter.aws.cloudtrail import CreateTrainingJobTrail
from flopsmeter.aws.lookup_budget import LookupBudget
from flopsmeter.aws.metrics import JobMetrics
from flopsmeter.aws.notifier import Notifier
from flopsmeter.aws.sagemaker import SageMakerJobs
from flopsmeter.aws.store import AuditStore
from flopsmeter.errors import TransientError
from flopsmeter.functions.inbound import LaunchCall as LaunchCallEvent
from flopsmeter.functions.inbound import parse_inbound
from flopsmeter.local import moto_ext
from flopsmeter.local.moto_ext.cloudtrail import RateLimit, retime_cloudtrail_event, set_cloudtrail_rate_limit
from flopsmeter.ports import LaunchCall
from flopsmeter.service.classifier import classify_and_record
from flopsmeter.service.dependencies import ClassifyRequest, Dependencies, ServiceConfig
from flopsmeter.service.provenance import capture_launch

REGION = "us-east-1"
BUCKET = "flopsmeter-audit-bench"
VISIBILITY_SECONDS = 360  # the stack's classifier queue: 6 x the 60 s function timeout
CLOUDTRAIL_MAX_WAIT_SECONDS = 1800  # the stack's default
BATCH_SIZE = 5  # the stack's event source batch size
TRIALS_PER_SWEEP = 20
STEPS_PER_EXECUTION = 2
PEOPLE = ("alice", "bob", "carol")
Service = Literal["sagemaker", "cloudtrail", "s3", "cloudwatch", "events", "sns", "sqs", "sts", "iam"]
SERVICES: tuple[Service, ...] = get_args(Service)


class SimulatedClock:
    """Seconds since the start of the run; ``sleep`` moves it on (nothing waits for real)."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.seconds = 0.0

    def monotonic(self) -> float:
        return self.seconds

    def sleep(self, seconds: float) -> None:
        self.seconds += max(0.0, seconds)

    def advance_to(self, moment: datetime) -> None:
        self.seconds = max(self.seconds, (moment - self.start).total_seconds())

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.seconds)


@dataclass
class Options:
    jobs: int = 3000
    hours: float = 1.0
    trail: bool = True
    tuning_share: float = 0.3
    pipeline_share: float = 0.1
    job_minutes: float = 30.0


@dataclass
class Job:
    name: str
    launched: datetime
    kind: str  # direct | tuning | pipeline
    parent_arn: str | None = None


@dataclass
class Run:
    options: Options
    clients: dict[str, Any]
    clock: SimulatedClock
    calls: Counter[str] = field(default_factory=Counter)
    queue_url: str = ""
    account: str = ""
    captured: int = 0
    retries: int = 0

    def count(self, event_name: str, **_: Any) -> None:
        _hook, service, operation = event_name.split(".", 2)
        self.calls[f"{service}.{operation}"] += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=Options.jobs)
    parser.add_argument("--hours", type=float, default=Options.hours)
    parser.add_argument("--trail", choices=("on", "off"), default="on")
    parser.add_argument("--tuning-share", type=float, default=Options.tuning_share)
    parser.add_argument("--pipeline-share", type=float, default=Options.pipeline_share)
    args = parser.parse_args(argv)
    options = Options(args.jobs, args.hours, args.trail == "on", args.tuning_share, args.pipeline_share)
    result = run_bench(options)
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0 if result["meets_target"] or not options.trail else 1


def run_bench(options: Options) -> dict[str, Any]:
    from moto import mock_aws

    moto_ext.install()
    logging.getLogger("flopsmeter").setLevel(logging.WARNING)
    started = time.perf_counter()
    with mock_aws():
        run = _setup(options)
        jobs = _launch_all(run)
        records = _classify_all(run, jobs)
    return _report(run, records, time.perf_counter() - started)


def _setup(options: Options) -> Run:
    import boto3

    clients: dict[str, Any] = {name: boto3.client(name, region_name=REGION) for name in SERVICES}
    clock = SimulatedClock(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=options.hours + 2))
    run = Run(options, clients, clock)
    run.account = clients["sts"].get_caller_identity()["Account"]
    s3 = clients["s3"]
    s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(
        Bucket=BUCKET,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": 10}},
        },
    )
    if options.trail:
        s3.create_bucket(Bucket=f"{BUCKET}-trail")
        clients["cloudtrail"].create_trail(Name="management", S3BucketName=f"{BUCKET}-trail")
        clients["cloudtrail"].start_logging(Name="management")
    run.queue_url = _provenance_queue(clients)
    set_cloudtrail_rate_limit(RateLimit(clock=clock.monotonic), account_id=run.account, region=REGION)
    clients["iam"].create_role(
        RoleName="MLEngineer",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )
    for client in (clients["sagemaker"], clients["cloudtrail"], clients["s3"], clients["cloudwatch"]):
        client.meta.events.register("before-call", run.count)
    for client in (clients["events"], clients["sns"]):
        client.meta.events.register("before-call", run.count)
    return run


def _provenance_queue(clients: dict[str, Any]) -> str:
    sqs, events = clients["sqs"], clients["events"]
    url = sqs.create_queue(QueueName="flopsmeter-provenance")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="flopsmeter-provenance", EventPattern=json.dumps(contract.training_launch_pattern()))
    events.put_targets(Rule="flopsmeter-provenance", Targets=[{"Id": "queue", "Arn": arn}])
    return str(url)


def _session_client(run: Run, who: str) -> Any:
    import boto3

    creds = run.clients["sts"].assume_role(RoleArn=f"arn:aws:iam::{run.account}:role/MLEngineer", RoleSessionName=who)[
        "Credentials"
    ]
    return boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=REGION,
    ).client("sagemaker")


def _launch_all(run: Run) -> list[Job]:
    """Launch every job in simulated time; parents first (a sweep's tuning job, a pipeline's execution)."""
    o = run.options
    people = {who: _session_client(run, who) for who in (*PEOPLE, "sagemaker-service")}
    step = o.hours * 3600 / max(1, o.jobs)
    n_tuning, n_pipeline = int(o.jobs * o.tuning_share), int(o.jobs * o.pipeline_share)
    jobs: list[Job] = []
    parent: str | None = None
    for i in range(o.jobs):
        when = run.clock.start + timedelta(seconds=i * step)
        kind = "tuning" if i < n_tuning else "pipeline" if i < n_tuning + n_pipeline else "direct"
        person = people[PEOPLE[i % len(PEOPLE)]]
        if kind == "tuning" and i % TRIALS_PER_SWEEP == 0:
            parent = _start_sweep(run, person, f"sweep-{i}", when)
        elif kind == "pipeline" and (i - n_tuning) % STEPS_PER_EXECUTION == 0:
            parent = _start_pipeline(run, person, f"pipe-{i}", when)
        job = Job(f"job-{i:05d}", when, kind, parent if kind != "direct" else None)
        _create_job(run, people["sagemaker-service"] if job.parent_arn else person, job)
        jobs.append(job)
        if i % 50 == 49:
            _capture_pending(run)
    _capture_pending(run)
    return jobs


def _start_sweep(run: Run, client: Any, name: str, when: datetime) -> str:
    arn = client.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig={
            "Strategy": "Bayesian",
            "ResourceLimits": {"MaxNumberOfTrainingJobs": TRIALS_PER_SWEEP, "MaxParallelTrainingJobs": 4},
        },
        TrainingJobDefinition={
            "AlgorithmSpecification": {"TrainingImage": "bench:latest", "TrainingInputMode": "File"},
            "RoleArn": f"arn:aws:iam::{run.account}:role/SageMakerExecution",
            "OutputDataConfig": {"S3OutputPath": "s3://bench-output/"},
            "ResourceConfig": {"InstanceType": "ml.g5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
            "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
        },
    )["HyperParameterTuningJobArn"]
    retime_cloudtrail_event(arn, when, account_id=run.account, region=REGION)
    return str(arn)


def _start_pipeline(run: Run, client: Any, name: str, when: datetime) -> str:
    run.clients["sagemaker"].create_pipeline(
        PipelineName=name,
        PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
        RoleArn=f"arn:aws:iam::{run.account}:role/SageMakerExecution",
    )
    arn = client.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    retime_cloudtrail_event(arn, when, account_id=run.account, region=REGION)
    return str(arn)


def _create_job(run: Run, client: Any, job: Job) -> None:
    tags = []
    if job.kind == "pipeline" and job.parent_arn:
        tags = [
            {"Key": contract.TAG_PIPELINE_EXECUTION_ARN, "Value": job.parent_arn},
            {"Key": contract.TAG_PIPELINE_STEP_NAME, "Value": "Train"},
        ]
    client.create_training_job(
        TrainingJobName=job.name,
        RoleArn=f"arn:aws:iam::{run.account}:role/SageMakerExecution",
        AlgorithmSpecification={"TrainingImage": "bench:latest", "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": "s3://bench-output/"},
        ResourceConfig={"InstanceType": "ml.g5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
        StoppingCondition={"MaxRuntimeInSeconds": 86400},
        Tags=tags,
    )
    end = job.launched + timedelta(minutes=run.options.job_minutes)
    launched_by = job.parent_arn if job.kind == "tuning" else None
    step_of = job.parent_arn if job.kind == "pipeline" else None  # ListPipelineExecutionSteps confirms the tag
    state = moto_ext.JobState(
        status="InProgress",
        creation=job.launched,
        start=job.launched,
        launched_by=launched_by,
        pipeline_execution=step_of,
    )
    moto_ext.set_training_job_state(job.name, state, account_id=run.account, region=REGION)
    moto_ext.set_training_job_state(
        job.name, moto_ext.JobState(status="Completed", end=end), account_id=run.account, region=REGION
    )


def _launch_call(body: str) -> LaunchCall:
    """A queued launch event as the provenance function parses it (``flopsmeter.functions.inbound``)."""
    parsed: LaunchCallEvent = parse_inbound(body, accept=(LaunchCallEvent,))
    return parsed.to_call()


def _capture_pending(run: Run) -> None:
    """Play the provenance function: every queued launch event through ``capture_launch``."""
    sqs, store = run.clients["sqs"], AuditStore(run.clients["s3"], BUCKET)
    while True:
        batch = sqs.receive_message(QueueUrl=run.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return
        for message in batch:
            run.calls["lambda.Invoke(provenance)"] += 1
            run.captured += int(capture_launch(_launch_call(message["Body"]), store, run.clock.now()).written)
        sqs.delete_message_batch(
            QueueUrl=run.queue_url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)],
        )


def _deps(run: Run) -> Dependencies:
    c = run.clients
    budget = LookupBudget(clock=run.clock.monotonic, sleep=run.clock.sleep)
    return Dependencies(
        jobs=SageMakerJobs(c["sagemaker"]),
        meter=JobMetrics(c["cloudwatch"]),
        trail=CreateTrainingJobTrail(c["cloudtrail"], budget),
        store=AuditStore(c["s3"], BUCKET),
        publisher=Notifier(c["events"], None),
        metrics=_NoMetrics(),
        log=logging.getLogger("flopsmeter.bench"),
        clock=run.clock.now,
    )


class _NoMetrics:
    def add_metric(self, name: str, unit: Any, value: float) -> None:
        del name, unit, value


def _classify_all(run: Run, jobs: list[Job]) -> list[Any]:
    """Classify each job a minute after its end, in simulated time order; transient failures come back later."""
    deps, config = _deps(run), ServiceConfig(cloudtrail_max_wait_seconds=CLOUDTRAIL_MAX_WAIT_SECONDS)
    due = [(j.launched + timedelta(minutes=run.options.job_minutes + 1), j.name) for j in jobs]
    heapq.heapify(due)
    records = []
    while due:
        when, name = heapq.heappop(due)
        run.clock.advance_to(when)
        try:
            result = classify_and_record(ClassifyRequest(name, f"evt-{name}"), deps, config)
        except TransientError:
            run.retries += 1
            heapq.heappush(due, (run.clock.now() + timedelta(seconds=VISIBILITY_SECONDS), name))
            continue
        if result.record is not None:
            records.append(result.record)
    return records


def derived_calls(run: Run, records: int) -> dict[str, float]:
    """What the bench plays in process, as AWS would count it: Lambda invocations and SQS requests."""
    batches = -(-records // BATCH_SIZE)
    return {
        "lambda.Invoke(classifier)": batches,
        "sqs.SendMessage(EventBridge -> classifier queue)": records,
        "sqs.ReceiveMessage(non-empty)": batches,
        "sqs.DeleteMessageBatch": batches,
        "lambda.Invoke(provenance)": run.calls["lambda.Invoke(provenance)"],
    }


# us-east-1 list prices (USD) per call; free tiers ignored. Sources: aws.amazon.com/lambda/pricing,
# aws.amazon.com/sqs/pricing, aws.amazon.com/s3/pricing, aws.amazon.com/kms/pricing,
# aws.amazon.com/cloudwatch/pricing, aws.amazon.com/eventbridge/pricing, aws.amazon.com/cloudtrail/pricing.
PRICE_PER_CALL = {
    "lambda.Invoke": 0.20 / 1e6,
    "sqs": 0.40 / 1e6,  # standard queue, per request
    "s3.PutObject": 0.005 / 1000,  # S3 Standard PUT, COPY, POST, LIST
    "s3.GetObject": 0.0004 / 1000,  # S3 Standard GET, SELECT and all other requests
    "s3.HeadObject": 0.0004 / 1000,
    "cloudwatch.GetMetricData": 6 * 0.01 / 1000,  # $0.01 per 1 000 metrics requested; 6 metrics a call
    "eventbridge.PutEvents": 1.00 / 1e6,  # custom events; AWS service events (state changes, API calls) are free
    "cloudtrail.LookupEvents": 0.0,  # event history lookups of management events are not charged
    "sagemaker": 0.0,  # DescribeTrainingJob, ListTags: no charge
    "kms": 0.03 / 10_000,  # per request (see KMS_CALLS_PER_S3_CALL)
}
# Lambda duration is not measured by the bench (in-process): assumed arm64 GB-seconds per invocation.
LAMBDA_GB_SECONDS = {"lambda.Invoke(classifier)": 0.5 * 1.5, "lambda.Invoke(provenance)": 0.25 * 0.1}
ARM_PRICE_PER_GB_SECOND = 0.0000133334
# Without an S3 Bucket Key: one GenerateDataKey per PutObject and one Decrypt per GetObject; the audit bucket uses
# a Bucket Key, which makes these a small fraction (the upper bound is reported).
KMS_CALLS_PER_S3_CALL = {"s3.PutObject": 1, "s3.GetObject": 1}


def dollars_per_1000_jobs(per_1000: dict[str, float]) -> dict[str, float]:
    """Estimated USD per 1 000 classified jobs, per service, from the counted (and derived) calls."""
    cost: defaultdict[str, float] = defaultdict(float)
    for call, count in per_1000.items():
        service = call.split(".", 1)[0]
        if call in PRICE_PER_CALL:
            cost[service] += count * PRICE_PER_CALL[call]
        elif call.startswith("lambda.Invoke"):
            cost["lambda"] += count * (
                PRICE_PER_CALL["lambda.Invoke"] + LAMBDA_GB_SECONDS[call] * ARM_PRICE_PER_GB_SECOND
            )
        elif service in PRICE_PER_CALL:
            cost[service] += count * PRICE_PER_CALL[service]
        cost["kms (upper bound, no bucket key)"] += count * KMS_CALLS_PER_S3_CALL.get(call, 0) * PRICE_PER_CALL["kms"]
    priced = {k: round(v, 5) for k, v in sorted(cost.items())}
    priced["total"] = round(sum(cost.values()), 4)
    return priced


def _report(run: Run, records: list[Any], wall: float) -> dict[str, Any]:
    lookups = run.calls["cloudtrail.LookupEvents"]
    without = [r for r in records if not r.cloudtrail.principal_arn]
    per_1000 = {
        k: round(v * 1000 / max(1, len(records)), 1)
        for k, v in sorted({**run.calls, **derived_calls(run, len(records))}.items())
        if not k.startswith(("sagemaker.Create", "sagemaker.StartPipeline"))
    }
    per_job = lookups / max(1, len(records))
    chained = sum(1 for r in records if r.cloudtrail.chain)
    launched_by_services = int(run.options.jobs * run.options.tuning_share) + int(
        run.options.jobs * run.options.pipeline_share
    )
    return {
        "jobs": run.options.jobs,
        "simulated_hours": run.options.hours,
        "trail": "on" if run.options.trail else "off",
        "launched_by_tuning": int(run.options.jobs * run.options.tuning_share),
        "launched_by_pipeline": int(run.options.jobs * run.options.pipeline_share),
        "records": len(records),
        "records_without_principal": len(without),
        "records_by_source": dict(Counter(str(r.cloudtrail.source) for r in records)),
        "records_with_chain": chained,
        "provenance_objects_captured": run.captured,
        "lookup_events_calls": lookups,
        "lookup_events_calls_per_job": round(per_job, 4),
        "transient_retries": run.retries,
        "aws_calls_per_1000_jobs": per_1000,
        "estimated_usd_per_1000_jobs": dollars_per_1000_jobs(per_1000),
        "simulated_seconds": round(run.clock.seconds),
        "wall_seconds": round(wall, 1),
        "meets_target": per_job <= 0.05
        and not without
        and len(records) == run.options.jobs
        and (chained == launched_by_services or not run.options.trail),
    }


if __name__ == "__main__":
    sys.exit(main())
