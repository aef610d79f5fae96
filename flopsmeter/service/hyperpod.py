"""A SageMaker HyperPod job reported by its own meter (issue 26 point 3): check who sent the report, tie the sender to
the cluster, and write the job's record with the ``reported`` method.

Trust: the body is a claim; SQS's ``SenderId`` is not (SQS sets it from the signed request). The report is recorded
only when IAM confirms the body's role has the SenderId's unique id (``GetRole``) and the sender belongs to the
cluster (``flopsmeter.domain.hyperpod.link_to_cluster``). Anything else is an ``UntrustedReport``, a permanent
failure: dead-lettered with its reason (nothing written, so a forged report can never take a real job's key), and
the cluster's compute stays visible as a gap in its period comparison (``flopsmeter.service.hyperpod_clusters``).

The record is built by the same code as a training job's (``build_record``): the report's figures stand where the
CloudWatch series would, its settings where the job's environment would (base model, PRETRAIN_FLOPS, parent job,
declared FLOPs), and the job's ceiling is the nodes it claims x its time; a meter that says it is incomplete or sends
no FLOPs leaves the job on that ceiling.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from flopsmeter import contract
from flopsmeter.audit.keys import hyperpod_record_key, hyperpod_record_name
from flopsmeter.audit.record import AuditRecord, CloudTrailRef, HyperPodInfo
from flopsmeter.domain.hyperpod import ClusterInventory, ClusterLink, Sender, link_to_cluster, sender_from
from flopsmeter.errors import PermanentError
from flopsmeter.ports import ClusterSource, MeteredFigures
from flopsmeter.service.classifier import ClassifyResult, record_job
from flopsmeter.service.dependencies import ClassifyRequest, Dependencies, ServiceConfig
from flopsmeter.service.facts import InstanceGroup, JobFacts
from flopsmeter.service.records import build_record

# What a report may set of the job's settings (the environment names the classifier reads of a training job).
REPORTED_SETTINGS = (
    contract.ENV_PRETRAIN_FLOPS, contract.ENV_BASE_MODEL, contract.ENV_SYSTEMIC_RISK_BASE, contract.ENV_PARENT_JOB,
    contract.ENV_DECLARED_FLOPS, contract.ENV_PARENT_FLOPS, contract.ENV_PRETRAIN_FLOPS_OVERRIDE_REASON,
)  # fmt: skip
NO_CLOUDTRAIL = (
    "a HyperPod job is not created through a SageMaker API, so no CloudTrail call names who submitted it; the job's "
    "IAM identity (the report's verified SQS sender) is in the hyperpod block, the orchestrator's user is a claim"
)


class UntrustedReport(PermanentError):
    """The report's sender could not be confirmed, or not tied to the cluster it names: nothing is recorded."""


@dataclass(frozen=True)
class HyperPodReport:
    """The report's claims (validated at the edge, ``flopsmeter.functions.hyperpod_models``)."""

    cluster: str
    orchestrator: Literal["slurm", "eks"]
    job_id: str
    caller_arn: str
    status: str
    start: datetime
    end: datetime
    instance_type: str
    node_count: int
    figures: MeteredFigures
    settings: Mapping[str, str] = field(default_factory=dict)
    submitted_by: str | None = None


@dataclass(frozen=True)
class ReportMessage:
    report: HyperPodReport
    sender_id: str | None  # SQS's SenderId attribute of the message
    message_id: str


class ReportedMeter:
    """The report's figures where a training job's CloudWatch series would be (a ``MeterSource``)."""

    def __init__(self, figures: MeteredFigures) -> None:
        self.figures = figures

    def job_metrics(self, job_name: str, start: datetime, end: datetime) -> MeteredFigures:
        del job_name, start, end
        return self.figures


def verified_sender(message: ReportMessage, clusters: ClusterSource) -> tuple[Sender, ClusterInventory, ClusterLink]:
    """The sender, the cluster and how they are tied; ``UntrustedReport`` when any of it cannot be confirmed."""
    sender, why = sender_from(message.sender_id, message.report.caller_arn)
    if sender is None:
        raise UntrustedReport(why)
    role_id, tags = clusters.role(sender.role_name)
    if role_id != sender.role_id:
        raise UntrustedReport(
            f"the message was sent by role id {sender.role_id}, not by {sender.role_arn} (role id {role_id}): the "
            "report's caller_arn is not its sender"
        )
    cluster = clusters.cluster(message.report.cluster)
    link = link_to_cluster(sender, tags.get(contract.TAG_HYPERPOD_CLUSTER), cluster)
    if link is None:
        raise UntrustedReport(
            f"{sender.principal_arn} is not tied to cluster {cluster.name}: its session is none of the cluster's "
            f"instances, its role none of the cluster's execution roles, and the role has no "
            f"{contract.TAG_HYPERPOD_CLUSTER}={cluster.name} tag (docs/hyperpod.md)"
        )
    return sender, cluster, link


def record_report(
    message: ReportMessage, deps: Dependencies, clusters: ClusterSource, config: ServiceConfig
) -> ClassifyResult:
    """Verify one HyperPod report and write its job's record (a no-op when it exists)."""
    report = message.report
    if report.status not in contract.TERMINAL_STATUSES:
        raise PermanentError(f"a HyperPod report must be of an ended job; status {report.status!r}")
    sender, cluster, link = verified_sender(message, clusters)
    region = cluster.arn.split(":")[3] if cluster.arn.count(":") >= 5 else "unknown"
    name = hyperpod_record_name(cluster.name, report.job_id)
    key = hyperpod_record_key(sender.account_id, region, report.end, cluster.name, report.job_id)
    facts = reported_facts(report, cluster, sender.account_id, region)
    block = HyperPodInfo(
        cluster_name=cluster.name,
        cluster_arn=cluster.arn,
        orchestrator=report.orchestrator,
        job_id=report.job_id,
        sender_id=str(message.sender_id),
        role_arn=sender.role_arn,
        session=sender.session,
        link=link.value,
        submitted_by=report.submitted_by,
        message_id=message.message_id,
    )
    request = ClassifyRequest(name)
    reported = replace(deps, meter=ReportedMeter(report.figures))

    def build() -> AuditRecord:
        provenance = CloudTrailRef(status="not_found", reason=NO_CLOUDTRAIL)
        record = build_record(facts, request, reported, config, deps.clock(), provenance=provenance)
        return as_reported(record, block)

    return record_job(request, deps, config, name, key, build)


def reported_facts(report: HyperPodReport, cluster: ClusterInventory, account_id: str, region: str) -> JobFacts:
    """A reported job as the record builder reads a training job (its ARN: the cluster's, ``/job/<job id>``)."""
    seconds = max(0.0, (report.end - report.start).total_seconds())
    warnings = (f"the job's nodes ({report.node_count} x {report.instance_type}) are the report's claim",)
    return JobFacts(
        name=report.job_id,
        arn=f"{cluster.arn}/job/{report.job_id}",
        account_id=account_id,
        region=region,
        status=report.status,
        failure_reason=None,
        creation_time=report.start,
        start_time=report.start,
        end_time=report.end,
        instance_groups=(InstanceGroup(report.instance_type, report.node_count),),
        billable_seconds=None,
        training_seconds=seconds,
        training_seconds_source="the report's start..end",
        environment={k: v for k, v in report.settings.items() if k in REPORTED_SETTINGS},
        warnings=warnings,
    )


def as_reported(record: AuditRecord, block: HyperPodInfo) -> AuditRecord:
    """The record with its figure labelled ``reported`` (when the meter's figure was used) and the hyperpod block."""
    flops = record.flops
    if flops.method == "metered":
        flops = flops.model_copy(
            update={
                "method": "reported",
                "metered_channel": "hyperpod_report",
                "uncertainty": (
                    "reported by the flopsmeter meter inside the HyperPod job, sent under the job's IAM identity "
                    f"({block.link}); the hardware ceiling of the nodes it claims is an upper bound"
                ),
            }
        )
    updated = record.model_copy(update={"flops": flops, "hyperpod": block})
    return updated.sealed() if record.sha256 else updated  # a sealed record is sealed again over what changed
