"""Capture at launch: who created each training job, tuning job, pipeline execution or AutoML job, stored by key.

- An EventBridge rule on the default bus, "AWS API Call via CloudTrail" for the SageMaker calls that create training
  work (``flopsmeter.contract.training_launch_pattern``, shared with the emulator), invokes the provenance function
  asynchronously (two retries, events up to six hours old; undeliverable events go to the classifier's dead-letter
  queue).
- The provenance function writes one immutable object per launch under ``provenance/`` of the audit bucket
  (``s3:PutObject`` there only, with ``If-None-Match``, Object Lock like every object; the stack adds its role to
  the bucket policy's retention writers).
- EventBridge only sees API calls while a CloudTrail trail logs management events in the account and region. A
  synthesis cannot see the account (it runs offline), so the stack says so in its ``ProvenanceTrailRequirement``
  output; ``create_management_trail`` makes the stack create a minimal single-region trail of write management
  events (to its own locked-down bucket). Without a trail the classifier falls back to LookupEvents.
"""

from __future__ import annotations

from dataclasses import replace

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from flopsmeter.audit.keys import PROVENANCE_PREFIX
from flopsmeter.contract import training_launch_pattern
from infra.constructs.audit_bucket import AuditBucket
from infra.constructs.functions import FunctionOptions, ServiceFunction
from infra.constructs.nag import acknowledge, skip_checkov
from infra.constructs.pipeline import event_pattern

PROVENANCE_ROOT = PROVENANCE_PREFIX.split("/", 1)[0] + "/"  # "provenance/"
TRAIL_REQUIREMENT = (
    "The provenance rule needs an active CloudTrail trail logging write management events in this region "
    "(synthesis is offline and cannot check; run: aws cloudtrail get-trail-status --name <trail>). Without one, "
    "the classifier falls back to CloudTrail LookupEvents (2 requests/s per account). Deploy with "
    "-c create_management_trail=true to create a minimal trail."
)


class LaunchProvenance(Construct):
    """Exposes ``function`` (a ``ServiceFunction``), ``rule`` and ``trail`` (None unless asked for)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        base: FunctionOptions,
        audit: AuditBucket,
        dead_letter_queue: sqs.IQueue,
        create_management_trail: bool,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = ServiceFunction(
            self,
            "Function",
            replace(
                base,
                handler="lambdas.provenance.handler.lambda_handler",
                description="Stores who launched each training job, tuning job, pipeline execution, AutoML job",
                timeout=Duration.seconds(30),
                memory_mb=256,
            ),
        )
        audit.grant_write_once(self.function.role, "WriteProvenanceOnce", PROVENANCE_ROOT)
        acknowledge(
            self.function.role, "AwsSolutions-IAM5[Resource::*]", "X-Ray trace writes have no resource-level scope."
        )
        skip_checkov(
            self.function.function,
            "CKV_AWS_116",
            "Invoked by EventBridge, whose target has retries and a dead-letter queue; a lost capture only means the "
            "classifier falls back to CloudTrail LookupEvents.",
        )
        self._dead_letter_queue = dead_letter_queue
        self.rule = self.add_bus(None, "LaunchCalls")
        self.trail = _management_trail(self, audit, removal_policy) if create_management_trail else None

    def add_bus(self, bus: events.IEventBus | None, construct_id: str) -> events.Rule:
        """A rule on ``bus`` (None: the account's default bus) sending launch calls to the provenance function."""
        return events.Rule(
            self,
            construct_id,
            event_bus=bus,
            description="FLOPs Meter: SageMaker calls that create training work -> provenance function",
            event_pattern=event_pattern(training_launch_pattern()),
            targets=[
                targets.LambdaFunction(
                    self.function.function,
                    retry_attempts=2,
                    max_event_age=Duration.hours(6),
                    dead_letter_queue=self._dead_letter_queue,
                )
            ],
        )

    @property
    def trail_output(self) -> str:
        return self.trail.trail_arn if self.trail is not None else TRAIL_REQUIREMENT


def _management_trail(scope: Construct, audit: AuditBucket, removal_policy: RemovalPolicy) -> cloudtrail.Trail:
    bucket = s3.Bucket(
        scope,
        "TrailBucket",
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        versioned=True,
        server_access_logs_bucket=audit.log_bucket,
        server_access_logs_prefix="trail-bucket/",
        lifecycle_rules=[
            s3.LifecycleRule(expiration=Duration.days(90), noncurrent_version_expiration=Duration.days(1))
        ],
        removal_policy=removal_policy,
        auto_delete_objects=False,
    )
    trail = cloudtrail.Trail(
        scope,
        "ManagementTrail",
        bucket=bucket,
        is_multi_region_trail=False,
        include_global_service_events=False,
        management_events=cloudtrail.ReadWriteType.WRITE_ONLY,
        enable_file_validation=True,
    )
    acknowledge(trail, "AwsSolutions-IAM5", "CloudTrail's own bucket policy, written by CDK.")
    return trail
