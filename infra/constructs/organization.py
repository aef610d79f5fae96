"""Organization mode, the compliance account's side: the organization event bus, its rule into the classifier
queue, the StackSet that deploys the member stack everywhere, and the classifier's and reconciler's right to
assume the member accounts' read-only role.

- The bus accepts ``events:PutEvents`` from any principal of the organization and from no one else
  (``aws:PrincipalOrgID``): the member stacks' forwarding rules put events there through their own roles.
- A rule on the bus sends the training-job state changes to the same classifier queue as the default bus's rule;
  the queue's policy allows each rule by ARN (``ClassifierQueue.add_source``).
- A service-managed StackSet (AWS Organizations' trusted access for CloudFormation StackSets, called as a
  delegated administrator by default) deploys ``infra.member.MemberStack`` to every account of the configured
  OUs and regions, and automatically to accounts that join them later; a removed account's stack is deleted.
  The management account is never a target of a service-managed StackSet: deploy the compliance stack, not the
  member stack, there if it trains.
- The functions may assume ``member_reader_role_name(stage)`` in any account of the organization only
  (``aws:ResourceOrgID``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_cdk import Aws
from aws_cdk import aws_cloudformation as cloudformation
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct

from flopsmeter.contract import member_reader_role_name
from infra.config import DeployConfig
from infra.constructs.nag import acknowledge
from infra.constructs.pipeline import BEDROCK_SOURCE, ClassifierQueue
from infra.constructs.provenance import LaunchProvenance
from infra.member import (
    CLASSIFIER_ROLE_ARN,
    ORGANIZATION_BUS_ARN,
    ORGANIZATION_ID,
    RECONCILER_ROLE_ARN,
    TEMPLATE_BODY_LIMIT,
    member_stack_name,
    member_template,
)


class OrganizationIntake(Construct):
    """Exposes ``bus``, ``stack_set`` and ``member_template`` (the member stack's template, as deployed)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        intake: ClassifierQueue,
        provenance: LaunchProvenance,
        readers: tuple[iam.IRole, iam.IRole],
        flags: Mapping[str, Any],
    ) -> None:
        super().__init__(scope, construct_id)
        assert config.organization_id is not None, "DeployConfig validates organization mode"
        org_id = config.organization_id
        self.bus = self._bus(config.stage, org_id)
        intake.add_source(self.bus, "OrganizationTrainingJobEnded")
        intake.add_source(self.bus, "OrganizationModelCustomizationJobEnded", BEDROCK_SOURCE)
        provenance.add_bus(self.bus, "OrganizationLaunchCalls")
        for role in readers:
            self._grant_assume_member_reader(role, config.stage, org_id)
        self.member_template = member_template(config.stage, flags)
        self.stack_set = self._stack_set(config, readers)

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

    def _stack_set(self, config: DeployConfig, readers: tuple[iam.IRole, iam.IRole]) -> cloudformation.CfnStackSet:
        """The service-managed StackSet that deploys the member template to the OUs' accounts and regions."""
        assert config.organization_id is not None
        body = json.dumps(self.member_template, separators=(",", ":"))
        if len(body) > TEMPLATE_BODY_LIMIT:
            raise ValueError(f"the member template is {len(body)} bytes; a StackSet takes {TEMPLATE_BODY_LIMIT} inline")
        classifier, reconciler = readers
        return cloudformation.CfnStackSet(
            self,
            "MemberStackSet",
            stack_set_name=member_stack_name(config.stage),
            description="FLOPs Meter member accounts: forward training-job events; read-only role for the classifier",
            permission_model="SERVICE_MANAGED",
            call_as=config.stackset_call_as,
            auto_deployment=cloudformation.CfnStackSet.AutoDeploymentProperty(
                enabled=True, retain_stacks_on_account_removal=False
            ),
            managed_execution={"Active": True},
            capabilities=["CAPABILITY_NAMED_IAM"],
            operation_preferences=cloudformation.CfnStackSet.OperationPreferencesProperty(
                failure_tolerance_percentage=10, max_concurrent_percentage=25, region_concurrency_type="PARALLEL"
            ),
            stack_instances_group=[
                cloudformation.CfnStackSet.StackInstancesProperty(
                    deployment_targets=cloudformation.CfnStackSet.DeploymentTargetsProperty(
                        organizational_unit_ids=list(config.member_organizational_units)
                    ),
                    regions=list(config.member_regions),
                )
            ],
            parameters=[
                _parameter(ORGANIZATION_BUS_ARN, self.bus.event_bus_arn),
                _parameter(CLASSIFIER_ROLE_ARN, classifier.role_arn),
                _parameter(RECONCILER_ROLE_ARN, reconciler.role_arn),
                _parameter(ORGANIZATION_ID, config.organization_id),
            ],
            template_body=body,
        )

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


def _parameter(key: str, value: str) -> cloudformation.CfnStackSet.ParameterProperty:
    return cloudformation.CfnStackSet.ParameterProperty(parameter_key=key, parameter_value=value)
