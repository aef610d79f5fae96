"""``flopsmeter demo`` (``make demo``): the product's main job, end to end, offline, on the local emulator.

1. start the emulator in this process and provision what the stack provisions;
2. run a real tiny LoRA fine-tuning with ``FlopsMeterCallback`` emitting to the emulated CloudWatch;
3. register more jobs (un-instrumented, known PRETRAIN_FLOPS, one that exceeds, a lineage parent + child,
   a failed job whose CloudTrail event never arrives, a job whose event is lost);
4. push state-change events through EventBridge -> SQS -> the real classifier handler, then a duplicate,
   an out-of-order InProgress and a malformed event; run the reconciler for the lost event;
5. show the records, the dead-letter queue, the alerts; write a signed digest and verify the trail;
6. try to delete and overwrite a record (refused, or detected), and stop the emulator.

Emulated, not AWS: moto's services; ``moto_ext`` fills DescribeTrainingJob's lifecycle and CloudTrail; the
runner plays Lambda's SQS event source mapping; job durations are declared (only the tiny job really ran).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from flopsmeter import contract
from flopsmeter.audit.record import AuditRecord
from flopsmeter.aws.store import AuditStore
from flopsmeter.local import moto_ext
from flopsmeter.local.clients import client
from flopsmeter.local.demo_customization import run_customization_scenario
from flopsmeter.local.demo_jobs import DECLARED_JOBS, LOST_JOB, METERED_JOB, ROLE, DemoJob
from flopsmeter.local.demo_lineage import run_lineage_scenario
from flopsmeter.local.demo_obligations import run_obligations_scenario
from flopsmeter.local.demo_provenance import run_provenance_scenario
from flopsmeter.local.emulator import Emulator
from flopsmeter.local.provision import LocalResources
from flopsmeter.local.runner import (
    Attempt,
    Handler,
    classifier_handler,
    drain,
    local_context,
    open_log,
    peek_dead_letters,
    put_state_change,
    reconciler_handler,
    send_raw,
)
from flopsmeter.local.show import attempts_table, console, dead_letters_table, records_table
from flopsmeter.local.tiny_training import run_tiny_fine_tuning


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
        self.checks: list[tuple[str, bool]] = []  # what the demo expects to have shown, checked at the end

    def check(self, what: str, ok: bool) -> None:
        self.checks.append((what, ok))

    # ------------------------------------------------------------------------------------------ helpers
    def section(self, title: str) -> None:
        self.out.rule(f"[bold]{title}[/] [dim]({time.monotonic() - self.started:.0f} s)[/]")

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
        report = drain(self.resources, handler=self.classifier, log_path=self.log_path, deadline_s=120)
        self.attempts += report.attempts
        self.out.print(attempts_table(report.attempts, title=f"Deliveries to the classifier: {label}"))

    # ------------------------------------------------------------------------------------------ steps
    def start(self, emulator: Emulator) -> None:
        self.section("1. Local AWS (moto) with the stack's resources")
        self.resources = emulator.provision()
        with _quiet(self.log_path):  # the function's loggers print to the log file, not the terminal
            self.classifier = classifier_handler(self.resources)
        r = self.resources
        table = Table(show_header=False)
        table.add_row("endpoint", f"{r.endpoint} (account {r.account_id}, {r.region}; no credentials, no network)")
        table.add_row("audit bucket", f"{r.audit_bucket}: Object Lock COMPLIANCE {r.retention_years} y, versioned")
        table.add_row(
            "events",
            f"EventBridge rule {r.rule_name} -> SQS {r.queue_url.rsplit('/', 1)[-1]} "
            f"(DLQ: permanent failures at once with the reason, others after {r.max_receive_count} deliveries) "
            "-> classifier Lambda (run in-process)",
        )
        table.add_row("alerts / signing", f"SNS {r.alert_topic_arn.rsplit(':', 1)[-1]}; KMS {r.signing_key_alias}")
        self.out.print(table)
        iam = self.aws("iam")
        iam.create_role(
            RoleName=ROLE,
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": r.account_id}}],
                }
            ),
        )

    def metered_job(self) -> None:
        self.section("2. A real (tiny) LoRA fine-tuning, metered by FlopsMeterCallback")
        job = DemoJob(
            METERED_JOB,
            "alice",
            "ml.g5.xlarge",
            1,
            0.0,
            environment={contract.ENV_BASE_MODEL: "demo/tiny-llama", contract.ENV_TRAINING_JOB_NAME: METERED_JOB},
        )
        self.create_job(job)
        start = datetime.now(UTC)
        self.set_state(METERED_JOB, status="InProgress", creation=start - timedelta(seconds=30), start=start)
        if self.train:
            with _quiet(self.log_path):
                summary = run_tiny_fine_tuning(METERED_JOB, self.out_dir / "train", self.resources)
            self.out.print(
                f"trained {summary['steps']} steps in {summary['seconds']:.1f} s; the meter emitted "
                f"{summary['flops']:.3e} FLOPs over {summary['tokens']} tokens ({summary['non_padding_tokens']} "
                f"non-padding) to CloudWatch namespace {contract.METRICS_NAMESPACE} (emulated)"
            )
        else:
            self.out.print(
                "[yellow]--skip-training: the job runs without the meter and is classified on its hardware ceiling[/]"
            )
        self.set_state(METERED_JOB, status="Completed", end=datetime.now(UTC))

    def declared_jobs(self) -> None:
        self.section("3. More training jobs (durations declared; nothing runs)")
        table = Table("job", "created by", "instances", "hours", "status", "what it shows")
        end = datetime.now(UTC) - timedelta(minutes=2)
        for job in (*DECLARED_JOBS, LOST_JOB):
            self.create_job(job)
            self.finish_job(job, end)
            table.add_row(
                job.name,
                f"{ROLE}/{job.who}",
                f"{job.instance_count} x {job.instance_type}",
                f"{job.hours:g}",
                job.status,
                job.story,
            )
        self.out.print(table)
        moto_ext.clear_cloudtrail_events(
            "demo-failed-oom",
            account_id=self.resources.account_id,
            region=self.resources.region,
            endpoint=self.resources.endpoint,
        )

    def push_events(self) -> None:
        self.section("4. SageMaker state-change events -> EventBridge -> SQS -> classifier")
        for name in [METERED_JOB, *(j.name for j in DECLARED_JOBS)]:
            put_state_change(self.resources, self.state_change_event(name))
        self.out.print(f"{1 + len(DECLARED_JOBS)} terminal events put on the default bus ({LOST_JOB.name}'s is lost)")
        self.run_classifier("terminal events")

        self.section("5. Duplicate, out-of-order and malformed events")
        put_state_change(self.resources, self.state_change_event("demo-full-ft-unmetered"))
        self.out.print("duplicate: demo-full-ft-unmetered's Completed event delivered again")
        put_state_change(self.resources, self.state_change_event(METERED_JOB, status="InProgress"))
        self.out.print(
            "out of order: an InProgress event for demo-lora-metered after its Completed one; the rule "
            "forwards only terminal statuses, so it is also sent straight to the queue"
        )
        late = self.state_change_event(METERED_JOB, status="InProgress")
        late["id"] = "out-of-order-inprogress"
        late["time"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        send_raw(self.resources, json.dumps(late))
        bad = self.state_change_event("demo-full-ft-unmetered")
        bad["detail"]["TrainingJobName"] = "../../etc/passwd"
        put_state_change(self.resources, bad)
        self.out.print("malformed: a Completed event whose job name is not a SageMaker job name")
        self.run_classifier("duplicate, out-of-order, malformed")
        s3 = self.aws("s3")
        versions = [
            v
            for v in s3.list_object_versions(Bucket=self.resources.audit_bucket, Prefix="records/").get("Versions", [])
            if v["Key"].endswith("/demo-full-ft-unmetered.json")
        ]
        self.out.print(
            f"duplicate delivery was a no-op: demo-full-ft-unmetered has {len(versions)} record "
            f"version(s) after 2 deliveries"
        )
        self.check("a duplicate delivery writes nothing", len(versions) == 1)

    def reconcile(self) -> None:
        self.section("6. Scheduled reconciler: a lost event never means a lost record")
        with _quiet(self.log_path):
            result = reconciler_handler(self.resources)(
                {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}},
                local_context(self.resources, "flopsmeter-reconciler"),
            )
        self.out.print(f"reconciler: {json.dumps(result, default=str)[:300]}")
        self.check("the reconciler records the job whose event was lost", LOST_JOB.name in str(result.get("recorded")))

    def records(self) -> list[Any]:
        self.section("7. The audit trail")
        store = AuditStore(self.aws("s3"), self.resources.audit_bucket)
        stored = sorted(
            ((o["Key"], store.get_record(o["Key"])) for o in store.list_keys("records/")),
            key=lambda pair: pair[1].job.end_time,
        )
        records = [record for _key, record in stored]
        self.out.print(
            records_table(records, title=f"Audit records in s3://{self.resources.audit_bucket} (* = primary policy)")
        )
        self.check("each record copy is saved under its own job's name", self.save_copies(store, stored))
        for r in records:
            if r.warnings:
                self.out.print(f"[dim]{r.job.name} warnings: {'; '.join(r.warnings)[:300]}[/]")
        dead_letters = peek_dead_letters(self.resources)
        self.out.print(dead_letters_table(dead_letters))  # reasons and deliveries from the messages' attributes
        alerts = _drain_inbox(self.aws("sqs"), self.resources.alert_inbox_url)
        for body in alerts:
            message = json.loads(body)
            self.out.print(f"[yellow]SNS alert[/]: {message.get('Subject')}")
        recorded = _drain_inbox(self.aws("sqs"), self.resources.recorded_inbox_url)
        self.out.print(f"EventBridge 'FLOPs Classification Recorded' events published: {len(recorded)}")
        by_name = {r.job.name: r for r in records}
        expected_jobs = {METERED_JOB, LOST_JOB.name, *(j.name for j in DECLARED_JOBS)}
        self.check("one record per job", set(by_name) == expected_jobs and len(records) == len(expected_jobs))
        if self.train:
            self.check(
                "the tiny fine-tuning is classified on its metered FLOPs",
                by_name.get(METERED_JOB) is not None and by_name[METERED_JOB].flops.method == "metered",
            )
        self.check("the big job exceeds", getattr(by_name.get("demo-big-exceeds"), "outcome", None) == "exceeds")
        self.check(
            "the lineage child is classified on parent + own FLOPs",
            getattr(by_name.get("demo-dpo-stage2"), "lineage", None) is not None
            and by_name["demo-dpo-stage2"].lineage.cumulative_flops > by_name["demo-dpo-stage2"].lineage.own_flops,
        )
        self.check(
            "a missing CloudTrail event is recorded as not_found with a reason",
            getattr(getattr(by_name.get("demo-failed-oom"), "cloudtrail", None), "status", None) == "not_found",
        )
        self.check(
            "the malformed event is in the dead-letter queue after 1 delivery, with its reason",
            [(d["error"], d["deliveries"], bool(d["reason"])) for d in dead_letters] == [("MalformedEvent", 1, True)],
        )
        self.check("alerts were sent for approaching/exceeds", len(alerts) >= 2)
        return records

    def save_copies(self, store: AuditStore, stored: list[tuple[str, AuditRecord]]) -> bool:
        """Copy each record's stored bytes to ``<out>/records/<job>.json``; True when every copy reads back as the
        record of the job its file is named after."""
        saved = self.out_dir / "records"
        saved.mkdir(parents=True, exist_ok=True)
        for key, record in stored:
            (saved / f"{record.job.name}.json").write_bytes(store.get(key).body)
        self.out.print(f"record JSON copies: {saved}/")
        copies = sorted(saved.glob("*.json"))
        names = {path.stem: json.loads(path.read_bytes()).get("job", {}).get("name") for path in copies}
        return len(copies) == len(stored) and all(stem == name for stem, name in names.items())

    def digest_and_verify(self) -> None:
        self.section("8. Signed digest and verification")
        from flopsmeter.aws.kms import KmsSigner
        from flopsmeter.compliance.verify import BucketSource, render_text, verify
        from flopsmeter.service.digests import write_digest

        store = AuditStore(self.aws("s3"), self.resources.audit_bucket)
        time.sleep(1.1)  # a digest covers versions written before its (whole-second) end: let the last one in
        for d in write_digest(
            store,
            KmsSigner(self.aws("kms"), self.resources.signing_key_id),
            account_id=self.resources.account_id,
            region=self.resources.region,
        ):
            self.out.print(
                f"digest s3://{store.bucket}/{d.key}: {d.record_count} record version(s), "
                f"KMS-signed, sha256 {d.sha256[:16]}…"
            )
        source: Any = BucketSource(store, kms=self.aws("kms"))
        report = verify(source)
        self.out.print(render_text(report))
        self.check("the trail verifies against its signed digest", report.ok)

    def tamper(self) -> None:
        self.section("9. Deleting or overwriting a record")
        from botocore.exceptions import ClientError

        from flopsmeter.compliance.verify import BucketSource, render_text, verify

        s3, bucket = self.aws("s3"), self.resources.audit_bucket
        key = next(
            o["Key"]
            for o in s3.list_objects_v2(Bucket=bucket, Prefix="records/")["Contents"]
            if o["Key"].endswith("/demo-big-exceeds.json")
        )
        version = s3.head_object(Bucket=bucket, Key=key)
        tries = (
            (
                "delete the locked version",
                lambda: s3.delete_object(Bucket=bucket, Key=key, VersionId=version["VersionId"]),
            ),
            (
                "overwrite with If-None-Match (how records are written)",
                lambda: s3.put_object(Bucket=bucket, Key=key, Body=b"{}", IfNoneMatch="*"),
            ),
        )
        attempt: Callable[[], Any]
        for label, attempt in tries:
            try:
                attempt()
            except ClientError as err:
                self.out.print(f"[green]refused[/]: {label}: {err.response['Error']['Code']}")
                self.check(f"refused: {label}", True)
            else:
                self.out.print(f"[red]accepted[/]: {label}")
                self.check(f"refused: {label}", False)
        # In AWS the stack's bucket policy denies a PutObject without If-None-Match (tests/infra prove the
        # statement); moto does not enforce bucket policies, so the emulator lets this one through.
        self.out.print(
            "a plain PUT (no If-None-Match): the deployed bucket policy denies it; the emulator does not enforce "
            "bucket policies, so it goes through here"
        )
        s3.put_object(Bucket=bucket, Key=key, Body=b'{"outcome": "below"}')
        kept = s3.head_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])
        self.out.print(
            f"even so it only adds a new version: the original ({version['VersionId'][:8]}…) is still there, locked "
            f"until {kept['ObjectLockRetainUntilDate']:%Y-%m-%d} ({kept['ObjectLockMode']}); verify now reports it:"
        )
        source: Any = BucketSource(AuditStore(s3, bucket), kms=self.aws("kms"))
        report = verify(source)
        self.out.print(render_text(report))
        self.out.print("[bold]verification detects the overwrite[/] (expected here: the demo tampered on purpose)")
        self.check("verify detects the overwritten record", not report.ok)


def _drain_inbox(sqs: Any, url: str) -> list[str]:
    bodies: list[str] = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return bodies
        for m in batch:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


@contextmanager
def _quiet(log_path: Path) -> Iterator[None]:
    stream = open_log(log_path)
    with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
        yield


def run_demo(*, out_dir: Path = Path(".local/demo"), train: bool = True) -> int:
    out = console()
    out_dir.mkdir(parents=True, exist_ok=True)
    out.print(
        Panel.fit(
            "[bold]FLOPs Meter demo[/]: every SageMaker training job's compute, classified against the EU AI Act "
            "thresholds\nfor downstream modifiers, recorded immutably and verifiably. Runs offline on an embedded AWS "
            "emulator.",
            border_style="blue",
        )
    )
    with Emulator() as emulator:
        demo = Demo(out, out_dir, train=train)
        demo.start(emulator)
        demo.metered_job()
        demo.declared_jobs()
        demo.push_events()
        demo.reconcile()
        demo.records()
        run_customization_scenario(demo)
        run_obligations_scenario(demo)  # issue 16: systemic crossing, due date, energy, documentation draft
        run_lineage_scenario(demo)
        demo.digest_and_verify()
        demo.tamper()
        run_provenance_scenario(demo)
        demo.section("10. What the demo showed")
    failed = [what for what, ok in demo.checks if not ok]
    for what, ok in demo.checks:
        out.print(f"  {'[green]ok[/]  ' if ok else '[red]FAIL[/]'} {what}")
    out.print(
        f"demo checks: {len(demo.checks) - len(failed)} ok, {len(failed)} failed. Emulator stopped. "
        f"Logs: {demo.log_path}. Total {time.monotonic() - demo.started:.0f} s."
    )
    return 1 if failed else 0
