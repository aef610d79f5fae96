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
  write nothing, delete nothing, read no data. IAM is global and the StackSet deploys one instance per account
  *and* region, so only the instance in the first member region creates the role (condition
  ``IsReaderRegion``), and its job-fact grants name every member region: one role per account, whatever the number
  of member regions, and no two instances that take the same name.

The template is synthesized by ``member_template`` in a separate CDK app with the bootstrapless synthesizer (no
assets, no bootstrap stack in member accounts, no credentials at synth) and cdk-nag on; the StackSet carries it
inline and passes the compliance account's values as CloudFormation parameters.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from aws_cdk import Aws, CfnCondition, CfnParameter, Duration, Fn, Stack, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from flopsmeter.contract import (
    batch_service_job_state_change_pattern,
    member_reader_role_name,
    model_customization_job_state_change_pattern,
    training_job_state_change_pattern,
    training_launch_pattern,
    training_session_end_pattern,
    work_launch_patterns,
)
from infra.constructs.nag import acknowledge
from infra.constructs.pipeline import event_pattern
from infra.constructs.service import RECONCILER_BATCH_READS, UNSCOPED_ISSUE26_READS

# The member template's parameters, filled in by the StackSet (infra/constructs/organization.py).
ORGANIZATION_BUS_ARN = "OrganizationBusArn"
CLASSIFIER_ROLE_ARN = "ClassifierRoleArn"
RECONCILER_ROLE_ARN = "ReconcilerRoleArn"
HYPERPOD_ROLE_ARN = "HyperPodRoleArn"  # the HyperPod function: clusters and reporting roles (issue 26)
ORGANIZATION_ID = "OrganizationId"
READER_REGION_CONDITION = "IsReaderRegion"  # true in the one member region that creates the reader role
# The StackSet's CloudFormation inline template limit.
TEMPLATE_BODY_LIMIT = 51_200


def member_stack_name(stage: str) -> str:
    return f"FlopsMeterMember-{stage}"


class MemberStack(Stack):
    """Exposes ``reader`` (the role the compliance account assumes) and ``forward_rules``."""

    def __init__(self, scope: Construct, construct_id: str, *, stage: str, regions: tuple[str, ...]) -> None:
        super().__init__(
            scope,
            construct_id,
            synthesizer=cdk.BootstraplessSynthesizer(),
            description="FLOPs Meter member account: forwards training-job state changes; a read-only role",
        )
        bus_arn = self._parameter(ORGANIZATION_BUS_ARN, "The compliance account's organization event bus")
        classifier = self._parameter(CLASSIFIER_ROLE_ARN, "The compliance account's classifier role")
        reconciler = self._parameter(RECONCILER_ROLE_ARN, "The compliance account's reconciler role")
        hyperpod = self._parameter(HYPERPOD_ROLE_ARN, "The compliance account's HyperPod function role")
        org_id = self._parameter(ORGANIZATION_ID, "The organization (o-...)", pattern=r"^o-[a-z0-9]{10,32}$")
        self.forward_rules = self._forwarders(bus_arn)
        self.reader = self._reader(stage, regions, trusted=(classifier, reconciler, hyperpod), org_id=org_id)

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
            # issue 26: training sessions (opened: provenance above; ended: classifier) and AWS Batch service jobs
            ("ForwardTrainingSessionEnded", "SageMaker training sessions stopped or deleted",
             training_session_end_pattern()),
            ("ForwardBatchServiceJobEnded", "AWS Batch service jobs (attempts, end)",
             batch_service_job_state_change_pattern()),
            ("ForwardBatchLaunchCalls", "AWS Batch SubmitServiceJob calls (provenance)", work_launch_patterns()[1]),
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

    def _reader(self, stage: str, regions: tuple[str, ...], *, trusted: tuple[str, str, str], org_id: str) -> iam.Role:
        """The reader role, created only by the instance in ``regions[0]`` (IAM is global: one role per account, a
        fixed name no other instance takes), and granted the job reads in every member region."""
        in_organization = {"StringEquals": {"aws:PrincipalOrgID": org_id}}
        classifier, *others = trusted
        reader = iam.Role(
            self,
            "Reader",
            role_name=member_reader_role_name(stage),
            assumed_by=iam.ArnPrincipal(classifier).with_conditions(in_organization),
            max_session_duration=Duration.hours(1),
            description="FLOPs Meter: the compliance account reads training-job facts here (read-only)",
            inline_policies={"ReadJobFacts": iam.PolicyDocument(statements=_reads(regions))},
        )
        assert reader.assume_role_policy is not None
        reader.assume_role_policy.add_statements(
            iam.PolicyStatement(
                actions=["sts:AssumeRole"],
                principals=[iam.ArnPrincipal(arn) for arn in others],
                conditions=in_organization,
            )
        )
        home = CfnCondition(
            self, READER_REGION_CONDITION, expression=Fn.condition_equals(Aws.REGION, reader_region(regions))
        )
        cfn_role = reader.node.default_child
        assert isinstance(cfn_role, iam.CfnRole)
        cfn_role.cfn_options.condition = home
        _acknowledge_reads(reader, regions)
        return reader


def reader_region(regions: tuple[str, ...]) -> str:
    """The member region whose stack instance creates each account's reader role: the first one listed."""
    return regions[0]


_SCOPED_READS = (
    ("TrainingJobFacts", ("sagemaker:DescribeTrainingJob", "sagemaker:ListTags"), "sagemaker", "training-job/*",
     "Every training job in the member account is in scope (read-only)."),
    # confirms a job's sagemaker:pipeline-execution-arn tag
    ("PipelineStepJobs", ("sagemaker:ListPipelineExecutionSteps",), "sagemaker", "pipeline/*",
     "The steps of any pipeline execution a job's tag names are read to confirm the tag (read-only)."),
    ("CustomizationJobFacts", ("bedrock:GetModelCustomizationJob", "bedrock:ListTagsForResource"), "bedrock",
     "model-customization-job/*",
     "Every Bedrock model customization job in the member account is in scope (read-only)."),
    ("TrainingSessionFacts", ("sagemaker:DescribeTrainingSession",), "sagemaker", "training-session/*",
     "Every training session in the member account is in scope (read-only)."),
    ("HyperPodClusters", ("sagemaker:DescribeCluster", "sagemaker:ListClusterNodes"), "sagemaker", "cluster/*",
     "Every HyperPod cluster in the member account is compared with its reports (read-only)."),
)  # fmt: skip


def _reads(regions: tuple[str, ...]) -> list[iam.PolicyStatement]:
    """What the compliance account reads in a member account, in every member region: job facts, pipeline steps,
    metrics, launch calls."""
    statements = [
        iam.PolicyStatement(
            sid=sid,
            actions=list(actions),
            resources=[f"arn:{Aws.PARTITION}:{service}:{region}:{Aws.ACCOUNT_ID}:{resource}" for region in regions],
        )
        for sid, actions, service, resource, _ in _SCOPED_READS
    ]
    statements.append(
        iam.PolicyStatement(
            sid="NoResourceLevelPermissions",
            actions=[
                "sagemaker:ListTrainingJobs",
                "sagemaker:ListClusters",
                "bedrock:ListModelCustomizationJobs",
                "cloudwatch:GetMetricData",
                "cloudwatch:GetMetricStatistics",
                "cloudtrail:LookupEvents",
                *UNSCOPED_ISSUE26_READS,
                *RECONCILER_BATCH_READS,  # the reconciler's AWS Batch pass in this account
            ],
            resources=["*"],
        )
    )
    statements.append(  # IAM is global: the role a HyperPod report came from (its unique id) is read here
        iam.PolicyStatement(
            sid="ReportingRoles",
            actions=["iam:GetRole"],
            resources=[f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/*"],
        )
    )
    return statements


def _acknowledge_reads(reader: iam.Role, regions: tuple[str, ...]) -> None:
    acknowledge(
        reader,
        "AwsSolutions-IAM5[Resource::*]",
        "ListTrainingJobs, ListClusters, ListModelCustomizationJobs, ListTrainingSessions, ListModelPackages, Batch "
        "DescribeServiceJob, CloudWatch metric reads and CloudTrail LookupEvents have no resource-level scope.",
    )
    acknowledge(
        reader,
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:role/*]",
        "A HyperPod report may come from any role of the member account; GetRole confirms its unique id (read-only).",
    )
    for _, _, service, resource, reason in _SCOPED_READS:
        for region in regions:
            acknowledge(
                reader,
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:{service}:{region}:<AWS::AccountId>:{resource}]",
                reason,
            )


def member_template(stage: str, regions: tuple[str, ...], flags: Mapping[str, Any]) -> dict[str, Any]:
    """Synthesize the member stack on its own for ``regions`` (the member regions; cdk-nag on; ``flags``: the
    compliance app's feature flags)."""
    with tempfile.TemporaryDirectory(prefix="flopsmeter-member-") as outdir:
        app = cdk.App(context=dict(flags), outdir=outdir)
        stack = MemberStack(app, member_stack_name(stage), stage=stage, regions=regions)
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
        template: dict[str, Any] = app.synth().get_stack_by_name(stack.stack_name).template
    return template
