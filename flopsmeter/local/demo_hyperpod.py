"""Demo scenario (issue 26 point 3): a SageMaker HyperPod cluster with one metered job and compute nobody reported.

* a Slurm cluster of 4 x ml.p5.48xlarge, up since before yesterday;
* one job on 2 of its nodes runs the meter, which sends its report to the reports queue with the node's instance-role
  credentials (``flopsmeter.training.hyperpod_report``): the service confirms the sender (SQS SenderId + IAM) and
  records the job with the ``reported`` method;
* a report sent from a notebook's role, not tied to the cluster, is refused and dead-lettered with its reason;
* the daily pass compares yesterday with the cluster's ceiling: what no report covers is recorded as a gap.

Each is self-checked (``Demo.check``). Emulated: the cluster, its nodes' launch time and SQS's SenderId
(``moto_ext.hyperpod``); the job itself does not run, its meter's final snapshot is given.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any

from rich.table import Table

from flopsmeter import contract
from flopsmeter.audit.cluster_record import ClusterPeriodRecord
from flopsmeter.audit.keys import CLUSTERS_PREFIX, HYPERPOD_RECORD_PREFIX
from flopsmeter.audit.record import AuditRecord
from flopsmeter.aws.store import AuditStore
from flopsmeter.domain.hardware import hardware_ceiling
from flopsmeter.local.demo_session import Demo, quiet
from flopsmeter.local.hyperpod import (
    ReportsQueue,
    drain_reports,
    hyperpod_handler,
    provision_reports_queue,
    role_clients,
    run_cluster_pass,
)
from flopsmeter.local.moto_ext.hyperpod import ClusterNodes, set_cluster_nodes
from flopsmeter.local.show import records_table
from flopsmeter.training.hyperpod_report import send_report

CLUSTER, INSTANCE, NODES, JOB_NODES = "demo-hyperpod", "ml.p5.48xlarge", 4, 2
NODE_ROLE, NOTEBOOK_ROLE = "HyperPodNodeRole", "NotebookRole"
JOB_ID, FORGED_JOB_ID = "4242", "4243"
METERED_SHARE = 0.4  # the job's metered FLOPs as a share of its own nodes' ceiling


def _roles(demo: Demo) -> dict[str, str]:
    iam = demo.aws("iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                        "Principal": {"Service": "sagemaker.amazonaws.com"}}]})  # fmt: skip
    arns = {}
    for name in (NODE_ROLE, NOTEBOOK_ROLE):
        try:
            arns[name] = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        except iam.exceptions.EntityAlreadyExistsException:
            arns[name] = iam.get_role(RoleName=name)["Role"]["Arn"]
    return arns


def _cluster(demo: Demo, node_role: str, launched: datetime) -> list[str]:
    sagemaker = demo.aws("sagemaker")
    lifecycle = {"SourceS3Uri": "s3://sagemaker-demo-lifecycle/", "OnCreate": "on_create.sh"}
    group = {"InstanceGroupName": "workers", "InstanceType": INSTANCE, "InstanceCount": NODES,
             "ExecutionRole": node_role, "LifeCycleConfig": lifecycle}  # fmt: skip
    sagemaker.create_cluster(ClusterName=CLUSTER, InstanceGroups=[group])
    r = demo.resources
    set_cluster_nodes(CLUSTER, ClusterNodes(launched), account_id=r.account_id, region=r.region, endpoint=r.endpoint)
    return [n["InstanceId"] for n in sagemaker.list_cluster_nodes(ClusterName=CLUSTER)["ClusterNodeSummaries"]]


def _job_env(queue: ReportsQueue, job_id: str, started: datetime) -> dict[str, str]:
    """What a Slurm job's environment holds (the lifecycle script exports the FLOPSMETER_ settings)."""
    return {
        contract.ENV_REPORT_QUEUE_URL: queue.url, contract.ENV_HYPERPOD_CLUSTER: CLUSTER, "SLURM_JOB_ID": job_id,
        "SLURM_JOB_NUM_NODES": str(JOB_NODES), "SLURM_JOB_START_TIME": str(int(started.timestamp())),
        "SLURM_JOB_USER": "dana", "FLOPSMETER_INSTANCE_TYPE": INSTANCE,
        contract.ENV_BASE_MODEL: "meta-llama/Llama-3.1-8B",
    }  # fmt: skip


def _snapshot(flops: float) -> Any:
    """The meter's final snapshot (the fields the report reads)."""
    return SimpleNamespace(cumulative_flops=flops, tokens=2.0e9, non_padding_tokens=1.9e9, recompute_flops=0.0,
                           incomplete=False, unmetered=False)  # fmt: skip


def _send(demo: Demo, queue: ReportsQueue, roles: dict[str, str], node: str, started: datetime) -> float:
    seconds = (datetime.now(UTC) - started).total_seconds()
    flops = METERED_SHARE * hardware_ceiling(INSTANCE, JOB_NODES, seconds).flops
    out = demo.out_dir / "hyperpod"
    send_report(_snapshot(flops), "completed", out / JOB_ID, env=_job_env(queue, JOB_ID, started),
                clients=role_clients(demo.resources, roles[NODE_ROLE], node))  # fmt: skip
    send_report(_snapshot(1.0e18), "completed", out / FORGED_JOB_ID, env=_job_env(queue, FORGED_JOB_ID, started),
                clients=role_clients(demo.resources, roles[NOTEBOOK_ROLE], "alice"))  # fmt: skip
    return flops


def _dead_letters(demo: Demo, queue: ReportsQueue) -> list[dict[str, str]]:
    sqs = demo.aws("sqs")
    batch = sqs.receive_message(QueueUrl=queue.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                MessageAttributeNames=["All"]).get("Messages", [])  # fmt: skip
    return [
        {"job": json.loads(m["Body"]).get("job_id", "?"),
         "reason": m.get("MessageAttributes", {}).get(contract.DLQ_ATTR_REASON, {}).get("StringValue", "")}
        for m in batch
    ]  # fmt: skip


def _stored(demo: Demo) -> tuple[dict[str, AuditRecord], list[ClusterPeriodRecord]]:
    store = AuditStore(demo.aws("s3"), demo.resources.audit_bucket)
    records = {
        o["Key"]: store.get_record(o["Key"])
        for o in store.list_keys("records/")
        if o["Key"].rsplit("/", 1)[-1].startswith(f"{HYPERPOD_RECORD_PREFIX}{CLUSTER}.")
    }
    periods = [
        ClusterPeriodRecord.model_validate_json(store.get(o["Key"]).body) for o in store.list_keys(CLUSTERS_PREFIX)
    ]
    return records, periods


def _period_table(periods: list[ClusterPeriodRecord]) -> Table:
    table = Table("cluster", "day", "instance-hours", "ceiling", "reported", "unreported (gap)", "coverage", "status",
                  title="HyperPod cluster periods (clusters/)")  # fmt: skip
    for p in periods:
        figures = (p.ceiling_flops, p.reported_flops, p.unreported_flops)
        table.add_row(p.cluster_name, f"{p.period_start:%Y-%m-%d}", f"{p.instance_hours:.1f}",
                      *(f"{f:.2e}" for f in figures), f"{p.coverage:.1%}", p.status)  # fmt: skip
    return table


def run_hyperpod_scenario(demo: Demo) -> None:
    demo.section("SageMaker HyperPod: one metered job reports itself; the rest of the cluster is a recorded gap")
    now = datetime.now(UTC)
    yesterday = datetime.combine((now - timedelta(days=1)).date(), time(0), tzinfo=UTC)
    roles = _roles(demo)
    nodes = _cluster(demo, roles[NODE_ROLE], yesterday - timedelta(hours=2))
    queue = provision_reports_queue(demo.resources)
    started = yesterday + timedelta(hours=8)
    flops = _send(demo, queue, roles, nodes[0], started)
    demo.out.print(
        f"cluster {CLUSTER}: {NODES} x {INSTANCE} (Slurm) since {yesterday - timedelta(hours=2):%Y-%m-%d %H:%M}Z; job "
        f"{JOB_ID} on {JOB_NODES} nodes reported {flops:.2e} FLOPs as {NODE_ROLE}/{nodes[0]}; a report for job "
        f"{FORGED_JOB_ID} came from {NOTEBOOK_ROLE}/alice"
    )
    with quiet(demo.log_path):  # the function's loggers print to the log file, not the terminal
        handler = hyperpod_handler(demo.resources, queue)
    drain_reports(demo.resources, queue, handler, demo.log_path)
    passed = run_cluster_pass(demo.resources, handler, demo.log_path)
    records, periods = _stored(demo)
    demo.out.print(records_table(records.values(), title="HyperPod jobs in the audit trail"))
    demo.out.print(_period_table(periods))
    dead = _dead_letters(demo, queue)
    for letter in dead:
        demo.out.print(f"[yellow]refused[/] job {letter['job']}: {letter['reason'][:160]}")
    _checks(demo, records, periods, dead, passed)


def _checks(demo: Demo, records: dict[str, AuditRecord], periods: list[ClusterPeriodRecord],
            dead: list[dict[str, str]], passed: dict[str, Any]) -> None:  # fmt: skip
    job = next((r for r in records.values() if r.job.name == JOB_ID), None)
    demo.check(
        "a HyperPod job's meter report is recorded with the reported method, its sender confirmed (node instance role)",
        job is not None and job.flops.method == "reported" and job.hyperpod is not None
        and job.hyperpod.link == "node" and job.hyperpod.role_arn.endswith(f":role/{NODE_ROLE}"),
    )  # fmt: skip
    demo.check(
        "a report from a role not tied to the cluster is refused and dead-lettered with why; no record is written",
        any(d["job"] == FORGED_JOB_ID and "not tied to cluster" in d["reason"] for d in dead)
        and all(r.job.name != FORGED_JOB_ID for r in records.values()),
    )  # fmt: skip
    period = next((p for p in periods if p.cluster_name == CLUSTER), None)
    demo.check(
        "the cluster's day is compared with its ceiling: compute no job reported is a recorded gap",
        period is not None and period.status == "gap" and 0 < period.reported_flops < period.ceiling_flops
        and period.unreported_flops > 0 and period.instance_hours == NODES * 24 and passed.get("with_gap") == 1,
    )  # fmt: skip
