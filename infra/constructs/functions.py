"""One Lambda function as this service runs it: its own role, its own encrypted log group, arm64, Powertools layer.

Each function gets a fresh role with nothing attached (no managed policies): the constructs that own the
resources grant exactly what each one needs (``infra.constructs.service`` wires them), so the role reads as the
function's permission list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs.nag import skip_checkov
from infra.layer import ARCHITECTURE, RUNTIME


@dataclass(frozen=True)
class FunctionOptions:
    """How one function runs. ``reserved_concurrency`` None: no reservation (the account's unreserved pool)."""

    handler: str
    description: str
    code: lambda_.Code
    layer: lambda_.ILayerVersion
    environment: Mapping[str, str]
    timeout: Duration
    log_retention: logs.RetentionDays
    log_key: kms.IKey  # the log group's encryption key (the logs carry job names and principal ARNs)
    removal_policy: RemovalPolicy
    memory_mb: int = 512
    reserved_concurrency: int | None = None


class ServiceFunction(Construct):
    """Exposes ``function``, ``role`` and ``log_group``."""

    def __init__(self, scope: Construct, construct_id: str, options: FunctionOptions) -> None:
        super().__init__(scope, construct_id)
        o = options
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"FLOPs Meter {construct_id}: only what this function needs",
        )
        self.log_group = logs.LogGroup(
            self, "Logs", retention=o.log_retention, encryption_key=o.log_key, removal_policy=o.removal_policy
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=o.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=o.handler,
            code=o.code,
            layers=[o.layer],
            role=self.role,
            timeout=o.timeout,
            memory_size=o.memory_mb,
            reserved_concurrent_executions=o.reserved_concurrency,
            environment=dict(o.environment),
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
        )
        # CDK makes the function depend on its role both by reference and by DependsOn; cfn-lint flags the repeat.
        cfn_function = self.function.node.default_child
        assert isinstance(cfn_function, lambda_.CfnFunction)
        cfn_function.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
        skip_checkov(
            cfn_function,
            "CKV_AWS_117",
            "Calls only AWS public APIs (S3, SageMaker, CloudWatch, CloudTrail, KMS, SNS, SQS, EventBridge); a VPC "
            "would add NAT or endpoints and no isolation.",
        )
        skip_checkov(
            cfn_function,
            "CKV_AWS_173",
            "The environment holds names, ARNs and settings, no secrets; Lambda encrypts it at rest with its own key.",
        )
        if o.reserved_concurrency is None:
            skip_checkov(
                cfn_function,
                "CKV_AWS_115",
                "No reservation by default: one fails to deploy where the account's unreserved concurrency would "
                "drop below 100; the classifier is capped by its event source's MaximumConcurrency instead.",
            )
        # Grant logs by hand (no AWSLambdaBasicExecutionRole): this log group only.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )

    def run_on_schedule(self, schedule: events.Schedule, description: str) -> events.Rule:
        """Invoke the function on ``schedule`` (asynchronously, two retries, events older than an hour dropped)."""
        return events.Rule(
            self,
            "Schedule",
            schedule=schedule,
            description=description,
            targets=[targets.LambdaFunction(self.function, retry_attempts=2, max_event_age=Duration.hours(1))],
        )
