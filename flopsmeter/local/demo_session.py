"""The demo's session: the emulator's resources, the clients, the console, and the checks every scenario adds to.

The scenarios (``demo_pipeline``, ``demo_trail``, ``demo_customization``, ``demo_obligations``, ``demo_lineage``,
``demo_provenance``) each take a ``Demo`` and add sections and checks to it; ``demo`` runs them in order.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from flopsmeter import contract
from flopsmeter.local import moto_ext
from flopsmeter.local.clients import client
from flopsmeter.local.demo_jobs import ROLE, DemoJob
from flopsmeter.local.provision import LocalResources
from flopsmeter.local.runner import Attempt, Handler, drain, open_log
from flopsmeter.local.show import attempts_table


class Demo:
    def __init__(self, out: Console, out_dir: Path, *, train: bool) -> None:
        self.out = out
        self.out_dir = out_dir
        self.train = train
        self.log_path = out_dir / "logs" / "demo.log"  # classifier, reconciler and training logs
        self.resources: LocalResources
        self.classifier: Handler
        self.callers: dict[tuple[str, str], Any] = {}  # (who, service) -> client
        self.attempts: list[Attempt] = []
        self.started = time.monotonic()
        self.sections = 0
        self.checks: list[tuple[str, bool]] = []  # what the demo expects to have shown, checked at the end

    def check(self, what: str, ok: bool) -> None:
        self.checks.append((what, ok))

    # ------------------------------------------------------------------------------------------ helpers
    def section(self, title: str) -> None:
        """A numbered section rule (numbered here, once, in the order the sections run) with the time so far."""
        self.sections += 1
        self.out.rule(f"[bold]{self.sections}. {title}[/] [dim]({time.monotonic() - self.started:.0f} s)[/]")

    def progress(self, what: str) -> Any:
        """A spinner with ``what`` while a long step runs (on a terminal; nothing when piped)."""
        return self.out.status(f"{what} [dim](started at {time.monotonic() - self.started:.0f} s)[/]")

    def aws(self, service: str) -> Any:
        return client(service, self.resources.endpoint, self.resources.region)

    def caller(self, who: str, service: str = "sagemaker") -> Any:
        """A client of ``service`` as an assumed-role session (CloudTrail records it as the creator)."""
        if (who, service) not in self.callers:
            import boto3

            creds = self.aws("sts").assume_role(
                RoleArn=f"arn:aws:iam::{self.resources.account_id}:role/{ROLE}", RoleSessionName=who
            )["Credentials"]
            self.callers[who, service] = boto3.session.Session(
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
                region_name=self.resources.region,
            ).client(service, endpoint_url=self.resources.endpoint)  # type: ignore[call-overload]
        return self.callers[who, service]

    def create_job(self, job: DemoJob) -> None:
        self.caller(job.who).create_training_job(
            TrainingJobName=job.name,
            RoleArn=f"arn:aws:iam::{self.resources.account_id}:role/SageMakerExecution",
            AlgorithmSpecification={
                "TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch"
                "-training:2.1-transformers4.36-gpu-py310",
                "TrainingInputMode": "File",
            },
            OutputDataConfig={"S3OutputPath": "s3://demo-training-output/"},
            ResourceConfig={
                "InstanceType": job.instance_type,
                "InstanceCount": job.instance_count,
                "VolumeSizeInGB": 100,
            },
            StoppingCondition={"MaxRuntimeInSeconds": 5 * 86400},
            Environment=job.environment,
            **job.extra,
        )

    def finish_job(self, job: DemoJob, end: datetime) -> None:
        start = end - timedelta(hours=job.hours)
        self.set_state(job.name, status="InProgress", creation=start - timedelta(minutes=4), start=start)
        self.set_state(job.name, status=job.status, end=end, failure_reason=job.failure_reason)

    def set_state(self, name: str, **kwargs: Any) -> None:
        moto_ext.set_training_job_state(
            name,
            moto_ext.JobState(**kwargs),
            account_id=self.resources.account_id,
            region=self.resources.region,
            endpoint=self.resources.endpoint,
        )

    def state_change_event(self, name: str, status: str | None = None) -> dict[str, Any]:
        """The event SageMaker sends: a DescribeTrainingJob-shaped detail, times in epoch milliseconds."""
        job = self.aws("sagemaker").describe_training_job(TrainingJobName=name)
        detail: dict[str, Any] = {
            "TrainingJobName": name,
            "TrainingJobArn": job["TrainingJobArn"],
            "TrainingJobStatus": status or job["TrainingJobStatus"],
            "SecondaryStatus": job["SecondaryStatus"],
            "ResourceConfig": job.get("ResourceConfig", {}),  # a serverless customization job has none
            "RoleArn": job["RoleArn"],
            "Tags": {},
        }
        for key in ("CreationTime", "TrainingStartTime", "TrainingEndTime", "LastModifiedTime"):
            if key in job:
                detail[key] = str(int(job[key].timestamp() * 1000))
        if job.get("FailureReason"):
            detail["FailureReason"] = job["FailureReason"]
        return {
            "version": "0",
            "id": "",
            "detail-type": contract.TRAINING_JOB_STATE_CHANGE,
            "source": contract.SAGEMAKER_EVENT_SOURCE,
            "account": self.resources.account_id,
            "region": self.resources.region,
            "resources": [job["TrainingJobArn"]],
            "detail": detail,
        }

    def run_classifier(self, label: str) -> None:
        with self.progress(f"classifier: draining the queue ({label})"):
            report = drain(self.resources, handler=self.classifier, log_path=self.log_path, deadline_s=120)
        self.attempts += report.attempts
        self.out.print(attempts_table(report.attempts, title=f"Deliveries to the classifier: {label}"))


def drain_inbox(sqs: Any, url: str) -> list[str]:
    bodies: list[str] = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return bodies
        for m in batch:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


@contextmanager
def quiet(log_path: Path) -> Iterator[None]:
    stream = open_log(log_path)
    with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
        yield
