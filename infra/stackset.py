"""The member StackSet's own stack (organization mode): ``FlopsMeter-<stage>-Members``, in the compliance account.

A service-managed StackSet (AWS Organizations' trusted access for CloudFormation StackSets, called as a delegated
administrator by default) deploys ``infra.member.MemberStack`` to every account of the configured OUs in every
member region, and automatically to accounts that join them later; a removed account's stack is deleted. The
management account is never a target of a service-managed StackSet: deploy a compliance stack, not the member
stack, there if it trains.

Why a stack of its own: the StackSet is the one resource whose success depends on other accounts (an SCP, a region
not enabled, trusted access not activated yet). Inside the compliance stack, its failure rolled the evidence stack
back and left a retained, locked bucket and keys behind per attempt; here it fails, and rolls back, alone. It
reads the organization bus's and the two functions' role ARNs from the compliance stack (CDK cross-stack
references: weak, ``Fn::GetStackOutput``, as ``cdk.json`` chooses), so it deploys after it (``cdk deploy --all``).

Failure tolerance: 100 % of the accounts per region, concurrency independent of failures
(``SOFT_FAILURE_TOLERANCE``): one account that refuses does not stop the rollout to the others, and the StackSet
operation itself succeeds, so this stack does not roll back for one account either. The failed instances stay
visible (``list-stack-instances``, docs/organization.md's checklist) and the classifier dead-letters their
accounts' events with the reason (the role cannot be assumed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_cloudformation as cloudformation
from constructs import Construct

from infra.config import DeployConfig
from infra.constructs.organization import OrganizationIntake
from infra.member import (
    CLASSIFIER_ROLE_ARN,
    HYPERPOD_ROLE_ARN,
    ORGANIZATION_BUS_ARN,
    ORGANIZATION_ID,
    RECONCILER_ROLE_ARN,
    TEMPLATE_BODY_LIMIT,
    member_stack_name,
    member_template,
)

FAILURE_TOLERANCE_PERCENT = 100
MAX_CONCURRENT_PERCENT = 25


def stack_set_stack_name(stage: str) -> str:
    return f"FlopsMeter-{stage}-Members"


class MemberStackSetStack(Stack):
    """Exposes ``stack_set`` and ``member_template`` (the member stack's template, as deployed)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        intake: OrganizationIntake,
        flags: Mapping[str, Any],
        **kwargs: Any,
    ) -> None:
        """``intake``: the compliance stack's organization side (its bus and the roles the member role trusts);
        ``flags``: the app's CDK feature flags, for the member stack's own synthesis."""
        super().__init__(scope, construct_id, **kwargs)
        assert config.organization_id is not None, "DeployConfig validates organization mode"
        self.member_template = member_template(config.stage, config.member_regions, flags)
        body = json.dumps(self.member_template, separators=(",", ":"))
        if len(body) > TEMPLATE_BODY_LIMIT:
            raise ValueError(f"the member template is {len(body)} bytes; a StackSet takes {TEMPLATE_BODY_LIMIT} inline")
        classifier, reconciler, hyperpod = intake.readers
        self.stack_set = cloudformation.CfnStackSet(
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
                failure_tolerance_percentage=FAILURE_TOLERANCE_PERCENT,
                max_concurrent_percentage=MAX_CONCURRENT_PERCENT,
                concurrency_mode="SOFT_FAILURE_TOLERANCE",
                region_concurrency_type="PARALLEL",
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
                _parameter(ORGANIZATION_BUS_ARN, intake.bus.event_bus_arn),
                _parameter(CLASSIFIER_ROLE_ARN, classifier.role_arn),
                _parameter(RECONCILER_ROLE_ARN, reconciler.role_arn),
                _parameter(HYPERPOD_ROLE_ARN, hyperpod.role_arn),
                _parameter(ORGANIZATION_ID, config.organization_id),
            ],
            template_body=body,
        )


def _parameter(key: str, value: str) -> cloudformation.CfnStackSet.ParameterProperty:
    return cloudformation.CfnStackSet.ParameterProperty(parameter_key=key, parameter_value=value)
