"""``flopsmeter demo --org`` (``make demo-org``): organization mode on the local emulator, three accounts.

The emulator (moto) keys every resource by the caller's account, and an assumed role's credentials act in the role's
account, so one moto server plays the compliance account (moto's default, ``123456789012``) and two member
accounts, plus a third member whose StackSet instance is missing:

1. provision the compliance account as the stack does, with the classifier in organization mode
   (``DEPLOYMENT_MODE=organization``, ``MEMBER_ROLE_NAME``, ``MAX_RECEIVE_COUNT``);
2. in the two members, the member stack's reader role and training jobs; in the third, jobs but no role;
3. the members' state-change events reach the classifier queue as the organization bus's rule delivers them (the
   member's ``account`` in the envelope) and the classifier reads each job through its account's reader role,
   writing the record into the compliance account's bucket under ``account=<member>``;
4. the third member's messages are retried, then dead-lettered on their last delivery with the reason (which role,
   ``AccessDenied``); the role is created (the StackSet reaches the account), the messages are redriven and
   classified;
5. digests for every account's chain, verification, and one query over all accounts.

Emulated, not AWS: moto's cross-account bus targets rewrite the envelope's ``account`` to the receiving account,
so the demo puts the envelope the organization bus's rule delivers straight on the queue; moto's AssumeRole accepts
any role, ``moto_ext.sts`` refuses a missing member reader role as AWS does; trust policies are not evaluated.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.panel import Panel
from rich.table import Table

from flopsmeter import contract
from flopsmeter.aws.store import AuditStore
from flopsmeter.local import moto_ext
from flopsmeter.local.clients import FAKE_ACCESS_KEY
from flopsmeter.local.emulator import Emulator
from flopsmeter.local.provision import LocalResources
from flopsmeter.local.runner import Handler, drain, local_clients, open_log, peek_dead_letters
from flopsmeter.local.show import attempts_table, console, records_table

STAGE = "local"
MEMBER_A, MEMBER_B, MEMBER_NO_ROLE = "111111111111", "222222222222", "333333333333"
ADMIN_ROLE = "OrganizationAccountAccessRole"  # what an organization's administrators assume in a member account


@dataclass(frozen=True)
class OrgJob:
    account: str
    name: str
    instance_type: str
    count: int
    hours: float


JOBS = (
    OrgJob(MEMBER_A, "research-llama8b-sft", "ml.p4d.24xlarge", 1, 6.0),
    OrgJob(MEMBER_A, "research-mistral-lora", "ml.g5.12xlarge", 1, 3.0),
    OrgJob(MEMBER_B, "marketing-70b-full-ft", "ml.p5.48xlarge", 8, 48.0),
    OrgJob(MEMBER_NO_ROLE, "newteam-first-run", "ml.g5.xlarge", 1, 2.0),
)


def org_env(resources: LocalResources) -> dict[str, str]:
    """The classifier's and reconciler's environment in organization mode (what the stack sets there)."""
    return resources.lambda_env() | {
        "DEPLOYMENT_MODE": contract.ORGANIZATION,
        "MEMBER_ROLE_NAME": contract.member_reader_role_name(STAGE),
        "MAX_RECEIVE_COUNT": str(resources.max_receive_count),
    }


class OrgDemo:
    def __init__(self, out_dir: Path) -> None:
        self.out = console()
        self.out_dir = out_dir
        self.log_path = out_dir / "logs" / "demo-org.log"
        self.checks: list[tuple[str, bool]] = []
        self.started = time.monotonic()
        self.resources: LocalResources
        self.classifier: Handler
        self.ends: dict[str, datetime] = {}

    def check(self, what: str, ok: bool) -> None:
        self.checks.append((what, ok))

    def section(self, title: str) -> None:
        self.out.rule(f"[bold]{title}[/] [dim]({time.monotonic() - self.started:.0f} s)[/]")

    # --------------------------------------------------------------------------------------------- accounts
    def as_account(self, account: str, service: str) -> Any:
        """A client acting in ``account`` (assumed-role credentials: moto then acts in that account)."""
        import boto3

        r = self.resources
        sts = boto3.client(
            "sts",
            endpoint_url=r.endpoint,
            region_name=r.region,
            aws_access_key_id=FAKE_ACCESS_KEY,
            aws_secret_access_key=FAKE_ACCESS_KEY,
        )
        creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{ADMIN_ROLE}", RoleSessionName="admin")
        return member_client(creds["Credentials"], service, r)

    def deploy_member_stack(self, account: str) -> None:
        """What the StackSet's member stack creates that the classifier needs: the reader role (trusting the
        compliance account's functions; moto does not evaluate trust policies)."""
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": self.resources.account_id}}
            ],
        }
        self.as_account(account, "iam").create_role(
            RoleName=contract.member_reader_role_name(STAGE), AssumeRolePolicyDocument=json.dumps(trust)
        )

    def run_job(self, job: OrgJob, end: datetime) -> None:
        self.as_account(job.account, "sagemaker").create_training_job(
            TrainingJobName=job.name,
            RoleArn=f"arn:aws:iam::{job.account}:role/SageMakerExecution",
            AlgorithmSpecification={
                "TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/hf:2.1",
                "TrainingInputMode": "File",
            },
            OutputDataConfig={"S3OutputPath": f"s3://training-output-{job.account}/"},
            ResourceConfig={"InstanceType": job.instance_type, "InstanceCount": job.count, "VolumeSizeInGB": 100},
            StoppingCondition={"MaxRuntimeInSeconds": 5 * 86400},
        )
        start = end - timedelta(hours=job.hours)
        state = moto_ext.JobState(status="Completed", creation=start - timedelta(minutes=4), start=start, end=end)
        moto_ext.set_training_job_state(
            job.name, state, account_id=job.account, region=self.resources.region, endpoint=self.resources.endpoint
        )
        self.ends[job.name] = end

    def forward(self, job: OrgJob) -> None:
        """The member's state change, as the organization bus's rule delivers it to the classifier queue."""
        r = self.resources
        arn = f"arn:aws:sagemaker:{r.region}:{job.account}:training-job/{job.name}"
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": contract.TRAINING_JOB_STATE_CHANGE,
            "source": contract.SAGEMAKER_EVENT_SOURCE,
            "account": job.account,
            "time": self.ends[job.name].strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": r.region,
            "resources": [arn],
            "detail": {"TrainingJobName": job.name, "TrainingJobArn": arn, "TrainingJobStatus": "Completed"},
        }
        sqs = local_clients(r)("sqs")
        sqs.send_message(QueueUrl=r.queue_url, MessageBody=json.dumps(event))

    # --------------------------------------------------------------------------------------------- steps
    def start(self, emulator: Emulator) -> None:
        from flopsmeter.functions.settings import ClassifierSettings

        self.section("1. The compliance account, its classifier in organization mode")
        self.resources = r = emulator.provision()
        settings = ClassifierSettings.from_env(org_env(r))
        stream = open_log(self.log_path)
        with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
            # imported here: Powertools binds its log stream at import, to the log file rather than the terminal
            from flopsmeter.functions import classifier
            from flopsmeter.functions.container import build_classifier
            from flopsmeter.functions.observability import logger, metrics

            container = build_classifier(
                settings,
                local_clients(r),
                metrics=metrics,
                log=logger,
                member_clients=lambda creds, service, region: member_client(creds, service, r, region),
            )
        self.classifier = classifier.handler_for(lambda: container)
        table = Table(show_header=False)
        table.add_row("compliance account", f"{r.account_id}: audit bucket {r.audit_bucket}, queue, DLQ, classifier")
        table.add_row("member role", f"{settings.MEMBER_ROLE_NAME} (assumed per account, sessions cached)")
        table.add_row("last delivery", f"{settings.MAX_RECEIVE_COUNT} (then a missing role is dead-lettered with why)")
        self.out.print(table)

    def members(self) -> None:
        self.section("2. Member accounts: two with the member stack, one the StackSet has not reached")
        for account in (MEMBER_A, MEMBER_B):
            self.deploy_member_stack(account)
        end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
        table = Table("account", "job", "hardware", "reader role")
        for i, job in enumerate(JOBS):
            self.run_job(job, end - timedelta(minutes=i))
            role = "missing" if job.account == MEMBER_NO_ROLE else contract.member_reader_role_name(STAGE)
            table.add_row(job.account, job.name, f"{job.count} x {job.instance_type}, {job.hours:g} h", role)
        self.out.print(table)

    def classify(self) -> None:
        self.section("3. Forwarded state changes -> the classifier, reading each job in its own account")
        for job in JOBS:
            self.forward(job)
        report = drain(self.resources, handler=self.classifier, log_path=self.log_path, deadline_s=90)
        self.out.print(attempts_table(report.attempts, title="Deliveries to the classifier"))
        store = self.store()
        recorded = {job.name for job in JOBS if store.exists(self.key(job))}
        self.check(
            "both members' jobs are recorded in the compliance bucket under their own account",
            recorded == {j.name for j in JOBS if j.account != MEMBER_NO_ROLE},
        )
        retried = [a for a in report.attempts if a.job_name == "newteam-first-run" and not a.ok]
        self.check("the member without the role is retried (a transient failure)", len(retried) >= 1)

    def dead_letter_and_redrive(self) -> None:
        self.section("4. The member without the role: dead-lettered with the reason, fixed, redriven")
        letters = peek_dead_letters(self.resources)
        for d in letters:
            self.out.print(
                f"DLQ: job {d['job_name']}, delivery {d['deliveries']}: [yellow]{d['error']}[/]: {d['reason']}"
            )
        role_arn = f"arn:aws:iam::{MEMBER_NO_ROLE}:role/{contract.member_reader_role_name(STAGE)}"
        self.check(
            "the dead-letter queue says which role could not be assumed and why",
            len(letters) == 1 and role_arn in str(letters[0]["reason"]) and "AccessDenied" in str(letters[0]["reason"]),
        )
        self.deploy_member_stack(MEMBER_NO_ROLE)
        self.out.print(f"member stack deployed in {MEMBER_NO_ROLE} (the StackSet reached it); redriving the DLQ")
        sqs = local_clients(self.resources)("sqs")
        for d in letters:
            sqs.send_message(QueueUrl=self.resources.queue_url, MessageBody=d["body"])
        while batch := sqs.receive_message(QueueUrl=self.resources.dlq_url, MaxNumberOfMessages=10).get("Messages"):
            for m in batch:
                sqs.delete_message(QueueUrl=self.resources.dlq_url, ReceiptHandle=m["ReceiptHandle"])
        report = drain(self.resources, handler=self.classifier, log_path=self.log_path, deadline_s=30)
        self.out.print(attempts_table(report.attempts, title="Deliveries after the redrive"))
        job = next(j for j in JOBS if j.account == MEMBER_NO_ROLE)
        self.check("after the redrive the third member's job is recorded", self.store().exists(self.key(job)))

    def one_query(self) -> None:
        self.section("5. Digests per account chain, verification, one query over every account")
        from flopsmeter.aws.kms import KmsSigner
        from flopsmeter.compliance.mirror import pull
        from flopsmeter.compliance.query import run_duckdb
        from flopsmeter.compliance.verify import BucketSource, render_text, verify
        from flopsmeter.service.digests import write_digest

        store = self.store()
        aws = local_clients(self.resources)
        time.sleep(1.1)  # a digest covers versions written before its (whole-second) end
        digests = write_digest(store, KmsSigner(aws("kms"), self.resources.signing_key_id))
        for d in digests:
            self.out.print(f"digest s3://{store.bucket}/{d.key}: {d.record_count} record version(s)")
        source: Any = BucketSource(store, kms=aws("kms"))  # as flopsmeter.local.demo: the Source protocol is loose
        report = verify(source)
        self.out.print(render_text(report))
        self.check("every member account's chain verifies against its signed digest", report.ok and len(digests) == 3)
        records = [store.get_record(o["Key"]) for o in store.list_keys("records/")]
        self.out.print(records_table(records, title=f"Audit records in s3://{store.bucket} (* = primary policy)"))
        with tempfile.TemporaryDirectory() as tmp:
            pull(store, Path(tmp))
            result = run_duckdb(
                Path(tmp),
                "SELECT account, count(*) AS jobs, sum(flops.classified_flops) AS flops, max(outcome) AS worst "
                "FROM records GROUP BY account ORDER BY account",
                cache=False,
            )
        table = Table(*result.columns, title="flopsmeter query: one query over the organization")
        for row in result.rows:
            table.add_row(*(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row))
        self.out.print(table)
        self.check(
            "one query covers the three member accounts",
            [(row[0], row[1]) for row in result.rows] == [(MEMBER_A, 2), (MEMBER_B, 1), (MEMBER_NO_ROLE, 1)],
        )

    # --------------------------------------------------------------------------------------------- helpers
    def store(self) -> AuditStore:
        return AuditStore(local_clients(self.resources)("s3"), self.resources.audit_bucket)

    def key(self, job: OrgJob) -> str:
        from flopsmeter.audit.keys import record_key

        return record_key(job.account, self.resources.region, self.ends[job.name], job.name)


def member_client(
    credentials: dict[str, Any], service: str, resources: LocalResources, region: str | None = None
) -> Any:
    """A client on the emulator acting with STS ``credentials`` (a member account's role)."""
    import boto3

    session: Any = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region or resources.region,
    )
    return session.client(service, endpoint_url=resources.endpoint)


def run_org_demo(*, out_dir: Path = Path(".local/demo-org")) -> int:
    demo = OrgDemo(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    demo.out.print(
        Panel.fit(
            "[bold]FLOPs Meter, organization mode[/]: member accounts forward their training jobs' state changes;\n"
            "one compliance account classifies them through each member's read-only role and keeps every record.",
            border_style="blue",
        )
    )
    with Emulator() as emulator:
        demo.start(emulator)
        demo.members()
        demo.classify()
        demo.dead_letter_and_redrive()
        demo.one_query()
    failed = [what for what, ok in demo.checks if not ok]
    for what, ok in demo.checks:
        demo.out.print(f"  {'[green]ok[/]  ' if ok else '[red]FAIL[/]'} {what}")
    demo.out.print(
        f"org demo checks: {len(demo.checks) - len(failed)} ok, {len(failed)} failed. Emulator stopped. "
        f"Logs: {demo.log_path}. Total {time.monotonic() - demo.started:.0f} s."
    )
    return 1 if failed else 0
