"""The member stack (organization mode): deployed to every member account and region by the compliance stack's
service-managed StackSet, never with ``cdk deploy``.

It holds two things:
- a rule on the member account's default bus forwarding the SageMaker training-job state changes
  (``flopsmeter.contract.training_job_state_change_pattern()``) to the compliance account's organization bus,
  through a role only EventBridge of this account may assume (cross-account bus targets need one);
- the read-only role ``member_reader_role_name(stage)`` that the compliance account's classifier and reconciler
  assume to read a job's facts: ``sagemaker:DescribeTrainingJob`` / ``ListTags`` on training jobs,
  ``sagemaker:ListPipelineExecutionSteps`` on pipeline executions (to confirm a pipeline tag),
  ``sagemaker:ListTrainingJobs``, ``cloudwatch:GetMetricData`` / ``GetMetricStatistics`` and
  ``cloudtrail:LookupEvents`` (these three have no resource-level permissions). It trusts exactly those two roles
  (by ARN, passed as parameters) and only while they belong to the organization (``aws:PrincipalOrgID``). It can
  write nothing, delete nothing, read no data.

The template is synthesized by ``member_template`` in a separate CDK app with the bootstrapless synthesizer (no
assets, no bootstrap stack in member accounts, no credentials at synth) and cdk-nag on; the StackSet carries it
inline and passes the compliance account's values as CloudFormation parameters.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from aws_cdk import Aws, CfnParameter, Duration, Stack, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from flopsmeter.contract import (
    member_reader_role_name,
    model_customization_job_state_change_pattern,
    training_job_state_change_pattern,
    training_launch_pattern,
)
from infra.constructs.nag import acknowledge
from infra.constructs.pipeline import event_pattern

# The member template's parameters, filled in by the StackSet (infra/constructs/organization.py).
ORGANIZATION_BUS_ARN = "OrganizationBusArn"
CLASSIFIER_ROLE_ARN = "ClassifierRoleArn"
RECONCILER_ROLE_ARN = "ReconcilerRoleArn"
ORGANIZATION_ID = "OrganizationId"
# The StackSet's CloudFormation inline template limit.
TEMPLATE_BODY_LIMIT = 51_200


def member_stack_name(stage: str) -> str:
    return f"FlopsMeterMember-{stage}"


class MemberStack(Stack):
    """Exposes ``reader`` (the role the compliance account assumes) and ``forward_rules``."""

    def __init__(self, scope: Construct, construct_id: str, *, stage: str) -> None:
        super().__init__(
            scope,
            construct_id,
            synthesizer=cdk.BootstraplessSynthesizer(),
            description="FLOPs Meter member account: forwards training-job state changes; a read-only role",
        )
        bus_arn = self._parameter(ORGANIZATION_BUS_ARN, "The compliance account's organization event bus")
        classifier = self._parameter(CLASSIFIER_ROLE_ARN, "The compliance account's classifier role")
        reconciler = self._parameter(RECONCILER_ROLE_ARN, "The compliance account's reconciler role")
        org_id = self._parameter(ORGANIZATION_ID, "The organization (o-...)", pattern=r"^o-[a-z0-9]{10,32}$")
        self.forward_rules = self._forwarders(bus_arn)
        self.reader = self._reader(stage, trusted=(classifier, reconciler), org_id=org_id)

    def _parameter(self, name: str, description: str, *, pattern: str = "^arn:aws[a-z-]*:.+$") -> str:
        return CfnParameter(self, name, type="String", description=description, allowed_pattern=pattern).value_as_string

    def _forwarders(self, bus_arn: str) -> list[events.Rule]:
        role = iam.Role(
            self,
            "ForwardRole",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com").with_conditions(
                {"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
            ),
            description="FLOPs Meter: EventBridge of this account puts training-job events on the organization bus",
        )
        bus = targets.EventBus(events.EventBus.from_event_bus_arn(self, "OrganizationBus", bus_arn), role=role)
        forwarded = (
            ("ForwardTrainingJobEnded", "SageMaker training jobs that reached a terminal status",
             training_job_state_change_pattern()),
            ("ForwardModelCustomizationJobEnded", "Bedrock model customization jobs that reached a terminal status",
             model_customization_job_state_change_pattern()),
            ("ForwardLaunchCalls", "SageMaker calls that create training work (provenance)", training_launch_pattern()),
        )  # fmt: skip
        return [
            events.Rule(
                self,
                rule_id,
                description=f"{what} -> FLOPs Meter organization bus",
                event_pattern=event_pattern(pattern),
                targets=[bus],
            )
            for rule_id, what, pattern in forwarded
        ]

    def _reader(self, stage: str, *, trusted: tuple[str, str], org_id: str) -> iam.Role:
        in_organization = {"StringEquals": {"aws:PrincipalOrgID": org_id}}
        classifier, reconciler = trusted
        reader = iam.Role(
            self,
            "Reader",
            role_name=member_reader_role_name(stage),
            assumed_by=iam.ArnPrincipal(classifier).with_conditions(in_organization),
            max_session_duration=Duration.hours(1),
            description="FLOPs Meter: the compliance account reads training-job facts here (read-only)",
        )
        assert reader.assume_role_policy is not None
        reader.assume_role_policy.add_statements(
            iam.PolicyStatement(
                actions=["sts:AssumeRole"], principals=[iam.ArnPrincipal(reconciler)], conditions=in_organization
            )
        )
        _grant_reads(reader)
        return reader


def _grant_reads(reader: iam.Role) -> None:
    """What the compliance account reads in a member account: job facts, pipeline steps, metrics, launch calls."""

    def in_member(service: str, resource: str) -> str:
        return f"arn:{Aws.PARTITION}:{service}:{Aws.REGION}:{Aws.ACCOUNT_ID}:{resource}"

    scoped = (
        ("TrainingJobFacts", ["sagemaker:DescribeTrainingJob", "sagemaker:ListTags"], "sagemaker", "training-job/*"),
        # confirms a job's sagemaker:pipeline-execution-arn tag
        ("PipelineStepJobs", ["sagemaker:ListPipelineExecutionSteps"], "sagemaker", "pipeline/*"),
        ("CustomizationJobFacts", ["bedrock:GetModelCustomizationJob", "bedrock:ListTagsForResource"], "bedrock",
         "model-customization-job/*"),
    )  # fmt: skip
    for sid, actions, service, resource in scoped:
        reader.add_to_policy(iam.PolicyStatement(sid=sid, actions=actions, resources=[in_member(service, resource)]))
    reader.add_to_policy(
        iam.PolicyStatement(
            sid="NoResourceLevelPermissions",
            actions=[
                "sagemaker:ListTrainingJobs",
                "bedrock:ListModelCustomizationJobs",
                "cloudwatch:GetMetricData",
                "cloudwatch:GetMetricStatistics",
                "cloudtrail:LookupEvents",
            ],
            resources=["*"],
        )
    )
    acknowledge(
        reader,
        "AwsSolutions-IAM5[Resource::*]",
        "ListTrainingJobs, ListModelCustomizationJobs, CloudWatch metric reads and CloudTrail LookupEvents have no "
        "resource-level scope.",
    )
    for resource, reason in (
        ("sagemaker:<AWS::Region>:<AWS::AccountId>:training-job/*",
         "Every training job in the member account is in scope (read-only)."),
        ("bedrock:<AWS::Region>:<AWS::AccountId>:model-customization-job/*",
         "Every Bedrock model customization job in the member account is in scope (read-only)."),
        ("sagemaker:<AWS::Region>:<AWS::AccountId>:pipeline/*",
         "The steps of any pipeline execution a job's tag names are read to confirm the tag (read-only)."),
    ):  # fmt: skip
        acknowledge(reader, f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:{resource}]", reason)


def member_template(stage: str, flags: Mapping[str, Any]) -> dict[str, Any]:
    """Synthesize the member stack on its own (cdk-nag on; ``flags``: the compliance app's feature flags)."""
    with tempfile.TemporaryDirectory(prefix="flopsmeter-member-") as outdir:
        app = cdk.App(context=dict(flags), outdir=outdir)
        stack = MemberStack(app, member_stack_name(stage), stage=stage)
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
        template: dict[str, Any] = app.synth().get_stack_by_name(stack.stack_name).template
    return template
