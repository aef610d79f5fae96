"""FlopsMeterStack: composes the constructs and names the outputs; each construct owns its resources and grants.

- ``AuditBucket`` (infra/constructs/audit_bucket.py): the locked bucket, its key, the access logs, the bucket
  policy, and the grants to write once / read / list under a prefix.
- ``DigestSigningKey`` (signing.py), ``MessagingKey`` (messaging.py), ``ClassifierQueue`` (pipeline.py),
  ``AlertTopic`` and ``Monitoring`` (monitoring.py), ``RecordsQuery`` (query.py): each grants on what it owns.
- ``TamperAlerts`` (tamper.py): key and bucket-policy tampering -> the alert topic.
- ``OrganizationIntake`` (organization.py, organization mode only): the organization bus, the StackSet that
  deploys ``infra.member.MemberStack`` to the member accounts, and the functions' right to assume its role.
- ``ServiceFunctions`` (service.py): the three functions, and which of those grants each role gets.
- ``RecordsCompaction`` (compaction.py): the scheduled function that copies settled days of records into
  Parquet (Athena), write-once, and maintains the ``records_compacted`` table's partitions.
- ``LaunchProvenance`` (provenance.py): the rule on SageMaker launch calls, the provenance function, and (when
  ``create_management_trail``) a minimal management-events trail.
- The ``AuditReadPolicy`` managed policy for people: read and verify records, query them; no writes, no deletes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aws_cdk import Aws, CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.config import DeployConfig
from infra.constructs.audit_bucket import AuditBucket
from infra.constructs.compaction import RecordsCompaction
from infra.constructs.hyperpod import HyperPodReports
from infra.constructs.messaging import MessagingKey
from infra.constructs.monitoring import AlertTopic, Monitoring
from infra.constructs.organization import OrganizationIntake
from infra.constructs.pipeline import ClassifierQueue
from infra.constructs.provenance import PROVENANCE_ROOT, LaunchProvenance, TrailPlan
from infra.constructs.query import RecordsQuery
from infra.constructs.service import ServiceFunctions, ServiceResources
from infra.constructs.signing import DigestSigningKey
from infra.constructs.tamper import TamperAlerts
from infra.member import member_stack_name

if TYPE_CHECKING:
    from infra.stackset import MemberStackSetStack


class FlopsMeterStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        asset_dir: str,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.config = cfg = config
        ephemeral = RemovalPolicy.RETAIN if cfg.is_production else RemovalPolicy.DESTROY

        audit = AuditBucket(
            self, "Audit", retention_years=cfg.retention_years, access_log_retention_days=cfg.access_log_retention_days
        )
        signing = DigestSigningKey(self, "DigestSigning")
        messaging_key = MessagingKey(self, "Messaging", removal_policy=ephemeral)
        alerts = AlertTopic(self, "Alerts", key=messaging_key, email=cfg.alert_email)
        intake = ClassifierQueue(
            self,
            "Intake",
            key=messaging_key,
            cloudtrail_max_wait_seconds=cfg.cloudtrail_max_wait_seconds,
            removal_policy=ephemeral,
        )
        resources = ServiceResources(audit=audit, alerts=alerts, intake=intake, signing=signing)
        parts = self._service(cfg, asset_dir, resources, ephemeral)
        TamperAlerts(self, "Tamper", keys=[audit.key, signing.key], bucket=audit.bucket, alerts=alerts)
        readers = self._readers(resources, parts.query)
        monitoring = Monitoring(
            self,
            "Monitoring",
            topic=alerts.topic,
            dead_letter_queue=intake.dead_letter_queue,
            queue=intake.queue,
            provenance_dead_letter_queue=parts.provenance.dead_letter_queue,
            functions=(*parts.functions.all, parts.provenance.function, parts.compaction.function),
            dashboard_name=dashboard_name(cfg.stage),
        )
        outputs = _outputs(resources, parts, readers, monitoring)
        self.organization: OrganizationIntake | None = None
        self.members: MemberStackSetStack | None = None  # organization mode: its own stack (infra/synth.py)
        if cfg.is_organization:
            self.organization = OrganizationIntake(
                self,
                "Organization",
                config=cfg,
                intake=intake,
                provenance=parts.provenance,
                readers=(
                    parts.functions.classifier.role,
                    parts.functions.reconciler.role,
                    parts.hyperpod.function.role,
                ),
            )
            outputs["OrganizationBusArn"] = self.organization.bus.event_bus_arn
            outputs["MemberStackSetName"] = member_stack_name(cfg.stage)  # in the stack FlopsMeter-<stage>-Members
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)

    def _service(
        self, cfg: DeployConfig, asset_dir: str, resources: ServiceResources, ephemeral: RemovalPolicy
    ) -> _ServiceParts:
        """The functions, launch provenance, the query layer and compaction, and the bucket policy's fence of who
        may set a retention where."""
        audit = resources.audit
        functions = ServiceFunctions(
            self, "Functions", config=cfg, asset_dir=asset_dir, resources=resources, removal_policy=ephemeral
        )
        provenance = LaunchProvenance(
            self,
            "Provenance",
            base=functions.base,
            audit=audit,
            key=resources.intake.messaging_key,
            trail=TrailPlan(
                create=cfg.create_management_trail or cfg.create_organization_trail,
                organization_id=cfg.organization_id if cfg.is_organization else None,
            ),
            removal_policy=ephemeral,
        )
        query = RecordsQuery(
            self,
            "Query",
            config=cfg,
            records_bucket=audit.bucket,
            key=audit.key,
            log_bucket=audit.log_bucket,
            removal_policy=ephemeral,
        )
        compaction = RecordsCompaction(self, "Compaction", base=functions.base, audit=audit, query=query)
        hyperpod = HyperPodReports(
            self,
            "HyperPod",
            base=functions.base,
            environment=functions.classification_environment,
            audit=audit,
            alerts=resources.alerts,
            organization=cfg if cfg.is_organization else None,
            removal_policy=ephemeral,
        )
        audit.restrict_writes_to(
            [
                *functions.retention_writers,
                (provenance.function.role, (PROVENANCE_ROOT,)),
                compaction.retention_writer,
                hyperpod.retention_writer,
            ],
            break_glass_role_name=cfg.break_glass_role_name,
            legal_hold_role_name=cfg.legal_hold_role_name,
        )
        return _ServiceParts(functions, provenance, query, compaction, hyperpod)

    def _readers(self, resources: ServiceResources, query: RecordsQuery) -> iam.ManagedPolicy:
        """``AuditReadPolicy``: people read, verify and query the records; no writes, no deletes."""
        readers = iam.ManagedPolicy(
            self, "AuditReadPolicy", description="FLOPs Meter: read, verify and query the audit records"
        )
        resources.audit.grant_readers(readers)
        resources.signing.grant_readers(readers)
        query.grant_readers(readers)
        return readers


def dashboard_name(stage: str) -> str:
    """Dashboard names are account-wide (CloudWatch has no regional namespace for them): the region is part of it."""
    return f"FlopsMeter-{stage}-{Aws.REGION}"


@dataclass(frozen=True)
class _ServiceParts:
    functions: ServiceFunctions
    provenance: LaunchProvenance
    query: RecordsQuery
    compaction: RecordsCompaction
    hyperpod: HyperPodReports


def _outputs(
    resources: ServiceResources, parts: _ServiceParts, readers: iam.ManagedPolicy, monitoring: Monitoring
) -> dict[str, str]:
    """The stack's outputs, by name (the CLI and the docs read them)."""
    query = parts.query
    return {
        "AuditBucketName": resources.audit.bucket.bucket_name,
        "AthenaWorkGroup": query.workgroup_name,
        "GlueDatabase": query.database_name,
        "GlueTable": query.table_name,
        "GlueCompactedTable": query.compacted_table_name,
        "AlertTopicArn": resources.alerts.topic.topic_arn,
        "ClassifierQueueUrl": resources.intake.queue.queue_url,
        "DeadLetterQueueUrl": resources.intake.dead_letter_queue.queue_url,
        "ProvenanceDeadLetterQueueUrl": parts.provenance.dead_letter_queue.queue_url,
        "DigestSigningKeyArn": resources.signing.key.key_arn,
        "AuditReadPolicyArn": readers.managed_policy_arn,
        "DashboardName": monitoring.dashboard.dashboard_name,
        "ClassifierFunctionName": parts.functions.classifier.function.function_name,
        "ProvenanceTrailRequirement": parts.provenance.trail_output,
        "HyperPodReportQueueUrl": parts.hyperpod.queue.queue_url,  # FLOPSMETER_REPORT_QUEUE_URL (docs/hyperpod.md)
        "HyperPodDeadLetterQueueUrl": parts.hyperpod.dead_letter_queue.queue_url,
    }
