"""Demo scenario: jobs launched by services keep the chain to the person who launched their parent.

carol starts a hyper-parameter tuning job and dave a pipeline execution; SageMaker (played by a service session)
launches two tuning trials (``TuningJobArn``) and one pipeline step (the ``sagemaker:pipeline-execution-arn``
tag, confirmed by the execution's ListPipelineExecutionSteps). erin launches a job herself and tags it with dave's
execution: the tag is a claim nobody confirms, so her job stays hers. Every launch call reaches EventBridge as "AWS
API Call via CloudTrail" (the emulator's trail is logging), the provenance rule queues it, and the real provenance
function stores it by key; the classifier then reads the parent's provenance in one GET. Self-checked: each record
names its parent and the parent's person, and erin's names erin.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.table import Table

from flopsmeter import contract
from flopsmeter.local.clients import client
from flopsmeter.local.demo_session import Demo
from flopsmeter.local.provision import LocalResources
from flopsmeter.local.runner import local_clients, local_context, open_log, put_state_change

SWEEP = "demo-sweep"
PIPELINE = "demo-pipeline"
TRIALS = ("demo-sweep-001-a1b2", "demo-sweep-002-c3d4")
STEP = "demo-pipeline-train-step"
SPOOFED = "demo-erin-claims-a-pipeline"  # erin's own job, tagged with dave's pipeline execution
SERVICE_SESSION = "SageMaker"  # stands in for the service that launches trials and steps
EXECUTION_ROLE = "arn:aws:iam::{account}:role/SageMakerExecution"


def provenance_handler(resources: LocalResources) -> Any:
    """The real provenance function over a container built for this emulator (the stack's settings)."""
    from flopsmeter.functions import provenance
    from flopsmeter.functions.container import build_provenance
    from flopsmeter.functions.settings import FunctionSettings

    container = build_provenance(FunctionSettings.from_env(resources.lambda_env()), local_clients(resources))
    return provenance.handler_for(lambda: container)


def deliver_launches(resources: LocalResources, handler: Any) -> list[dict[str, Any]]:
    """Play EventBridge's asynchronous invocation: every queued launch event through the provenance function."""
    sqs = client("sqs", resources.endpoint, resources.region)
    replies: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=resources.provenance_queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return replies
        for message in batch:
            replies.append(handler(json.loads(message["Body"]), local_context(resources, "flopsmeter-provenance")))
            sqs.delete_message(QueueUrl=resources.provenance_queue_url, ReceiptHandle=message["ReceiptHandle"])


def run_provenance_scenario(demo: Demo) -> None:
    demo.section("Provenance: a tuning job's trials and a pipeline step, launched by SageMaker for a person")
    r = demo.resources
    role = EXECUTION_ROLE.format(account=r.account_id)
    sweep_arn = _start_sweep(demo.caller("carol"), role)
    demo.aws("sagemaker").create_pipeline(
        PipelineName=PIPELINE, PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}), RoleArn=role
    )
    execution_arn = demo.caller("dave").start_pipeline_execution(PipelineName=PIPELINE)["PipelineExecutionArn"]
    service = demo.caller(SERVICE_SESSION)
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    for name in TRIALS:
        _create(service, name, role, [])
        start = end - timedelta(hours=1)
        demo.set_state(
            name, status="InProgress", creation=start - timedelta(minutes=3), start=start, launched_by=sweep_arn
        )
    step_tags = [
        {"Key": contract.TAG_PIPELINE_EXECUTION_ARN, "Value": execution_arn},
        {"Key": contract.TAG_PIPELINE_STEP_NAME, "Value": "Train"},
    ]
    _create(service, STEP, role, step_tags)
    _create(demo.caller("erin"), SPOOFED, role, step_tags)
    start = end - timedelta(hours=2)
    demo.set_state(
        STEP, status="InProgress", creation=start - timedelta(minutes=3), start=start, pipeline_execution=execution_arn
    )
    demo.set_state(SPOOFED, status="InProgress", creation=start - timedelta(minutes=3), start=start)
    stream = open_log(demo.log_path)  # the function's log lines and metrics go to the log file
    with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
        replies = deliver_launches(r, provenance_handler(r))
    captured = sum(1 for reply in replies if reply.get("captured"))
    demo.out.print(
        f"{captured} launch calls captured by the provenance function, every launch since the emulator started "
        "(its trail is logging, so EventBridge sees them; the rule forwards the SageMaker launch calls)"
    )
    for name in (*TRIALS, STEP, SPOOFED):
        demo.set_state(name, status="Completed", end=end)
        put_state_change(r, demo.state_change_event(name))
    demo.run_classifier("jobs launched by a tuning job and a pipeline, and one claiming a pipeline")
    _show_and_check(demo, {TRIALS[0]: sweep_arn, TRIALS[1]: sweep_arn, STEP: execution_arn})
    _check_spoofed(demo)


def _start_sweep(carol: Any, role: str) -> str:
    arn = carol.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=SWEEP,
        HyperParameterTuningJobConfig={
            "Strategy": "Bayesian",
            "ResourceLimits": {"MaxNumberOfTrainingJobs": len(TRIALS), "MaxParallelTrainingJobs": 2},
        },
        TrainingJobDefinition={
            "AlgorithmSpecification": {"TrainingImage": "demo:latest", "TrainingInputMode": "File"},
            "RoleArn": role,
            "OutputDataConfig": {"S3OutputPath": "s3://demo-training-output/"},
            "ResourceConfig": {"InstanceType": "ml.g5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
            "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
        },
    )["HyperParameterTuningJobArn"]
    return str(arn)


def _create(sagemaker: Any, name: str, role: str, tags: list[dict[str, str]]) -> None:
    sagemaker.create_training_job(
        TrainingJobName=name,
        RoleArn=role,
        AlgorithmSpecification={"TrainingImage": "demo:latest", "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": "s3://demo-training-output/"},
        ResourceConfig={"InstanceType": "ml.g5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
        StoppingCondition={"MaxRuntimeInSeconds": 86400},
        Tags=tags,
    )


def _show_and_check(demo: Demo, parents: dict[str, str]) -> None:
    from flopsmeter.aws.store import AuditStore

    store = AuditStore(demo.aws("s3"), demo.resources.audit_bucket)
    table = Table(title="Launch chain: job -> parent -> person")
    for column in ("job", "launched by", "parent", "person", "from"):
        table.add_column(column)
    people = {parents[TRIALS[0]]: "/carol", parents[STEP]: "/dave"}
    for name, parent in parents.items():
        description = demo.aws("sagemaker").describe_training_job(TrainingJobName=name)
        key = _record_key(store, name, description)
        record = store.get_record(key) if key else None
        ref = record.cloudtrail if record else None
        link = ref.chain[0] if ref and ref.chain else None
        table.add_row(
            name,
            link.kind if link else "-",
            parent.rsplit(":", 1)[-1],
            str(ref.principal_arn).rsplit(":", 1)[-1] if ref else "-",
            str(ref.source) if ref else "no record",
        )
        ok = bool(
            ref
            and link
            and link.arn == parent
            and ref.source == "provenance"
            and str(ref.principal_arn).endswith(people[parent])
        )
        demo.check(f"{name}: record keeps the chain to its parent and the parent's person", ok)
    demo.out.print(table)


def _check_spoofed(demo: Demo) -> None:
    from flopsmeter.aws.store import AuditStore

    store = AuditStore(demo.aws("s3"), demo.resources.audit_bucket)
    key = _record_key(store, SPOOFED, demo.aws("sagemaker").describe_training_job(TrainingJobName=SPOOFED))
    record = store.get_record(key) if key else None
    ok = bool(
        record
        and not record.cloudtrail.chain
        and str(record.cloudtrail.principal_arn).endswith("/erin")
        and any("not trusted" in w for w in record.warnings)
    )
    demo.out.print(
        f"{SPOOFED}: tagged with dave's pipeline execution, which never ran it -> recorded as launched by "
        f"{str(record.cloudtrail.principal_arn).rsplit('/', 1)[-1] if record else '?'}, with a warning"
    )
    demo.check(f"{SPOOFED}: a pipeline tag the execution does not confirm is not trusted (erin stays the person)", ok)


def _record_key(store: Any, name: str, description: dict[str, Any]) -> str | None:
    from flopsmeter.service.facts import facts_from_description

    key = facts_from_description(description, {}).record_key
    return key if store.exists(key) else None
