"""Organization mode, the compliance stack's side: the organization event bus, its rules into the classifier
queue and the provenance function, and the classifier's and reconciler's right to assume the member accounts'
read-only role. The StackSet that deploys the member stack everywhere is a stack of its own (``infra/stackset.py``),
so that nothing a member account does can roll back the evidence.

- The bus accepts ``events:PutEvents`` from any principal of the organization and from no one else
  (``aws:PrincipalOrgID``): the member stacks' forwarding rules put events there through their own roles.
- A rule on the bus sends the training-job state changes to the same classifier queue as the default bus's rule;
  the queue's policy allows each rule by ARN (``ClassifierQueue.add_source``).
- The functions may assume ``member_reader_role_name(stage)`` in any account of the organization only
  (``aws:ResourceOrgID``).
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct

from flopsmeter.contract import member_reader_role_name
from infra.config import DeployConfig
from infra.constructs.nag import acknowledge
from infra.constructs.pipeline import EXTRA_SOURCES, ClassifierQueue
from infra.constructs.provenance import LaunchProvenance


class OrganizationIntake(Construct):
    """Exposes ``bus`` and ``readers`` (the classifier's, the reconciler's and the HyperPod function's roles, which the
    member role trusts)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        intake: ClassifierQueue,
        provenance: LaunchProvenance,
        readers: tuple[iam.IRole, iam.IRole, iam.IRole],
    ) -> None:
        super().__init__(scope, construct_id)
        assert config.organization_id is not None, "DeployConfig validates organization mode"
        org_id = config.organization_id
        self.bus = self._bus(config.stage, org_id)
        intake.add_source(self.bus, "OrganizationTrainingJobEnded")
        for rule_id, source in EXTRA_SOURCES:
            intake.add_source(self.bus, f"Organization{rule_id}", source)
        provenance.add_bus(self.bus, "OrganizationLaunchCalls")
        for role in readers:
            self._grant_assume_member_reader(role, config.stage, org_id)
        self.readers = readers

    def _bus(self, stage: str, org_id: str) -> events.EventBus:
        """The organization bus: any principal of the organization may put events, no one else."""
        bus = events.EventBus(self, "Bus", event_bus_name=f"flopsmeter-{stage}-organization")
        bus.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OrganizationMembersPutEvents",
                principals=[iam.AnyPrincipal()],
                actions=["events:PutEvents"],
                resources=[bus.event_bus_arn],
                conditions={"StringEquals": {"aws:PrincipalOrgID": org_id}},
            )
        )
        return bus

    def _grant_assume_member_reader(self, role: iam.IRole, stage: str, org_id: str) -> None:
        name = member_reader_role_name(stage)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="AssumeMemberReader",
                actions=["sts:AssumeRole"],
                resources=[f"arn:{Aws.PARTITION}:iam::*:role/{name}"],
                conditions={"StringEquals": {"aws:ResourceOrgID": org_id}},
            )
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::*:role/{name}]",
            "The read-only member role in every account of the organization (aws:ResourceOrgID), none outside it.",
        )
