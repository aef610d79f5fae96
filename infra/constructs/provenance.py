"""Capture at launch: who created each training job, tuning job, pipeline execution or AutoML job, stored by key.

- An EventBridge rule on the default bus, "AWS API Call via CloudTrail" for the SageMaker calls that create training
  work (``flopsmeter.contract.training_launch_pattern``, shared with the emulator), invokes the provenance function
  asynchronously (two retries, events up to six hours old). Undeliverable events go to provenance's own dead-letter
  queue (``dead_letter_queue``; it alarms at the first message): a launch call is replayed to the provenance
  function, never redriven into the classifier's queue, which would refuse it.
- The provenance function writes one immutable object per launch under ``provenance/`` of the audit bucket
  (``s3:PutObject`` there only, with ``If-None-Match``, Object Lock like every object; the stack adds its role to
  the bucket policy's retention writers).
- EventBridge only sees API calls while a CloudTrail trail logs management events in the account and region. A
  synthesis cannot see the account (it runs offline), so the stack says so in its ``ProvenanceTrailRequirement``
  output; ``create_management_trail`` makes the stack create a minimal single-region trail of write management
  events (to its own locked-down bucket). Without a trail the classifier falls back to LookupEvents.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from aws_cdk import Annotations, Duration, RemovalPolicy
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from flopsmeter.audit.keys import PROVENANCE_PREFIX
from flopsmeter.contract import work_launch_patterns
from infra.constructs.audit_bucket import AuditBucket
from infra.constructs.functions import FunctionOptions, ServiceFunction
from infra.constructs.messaging import MessagingKey
from infra.constructs.nag import acknowledge, skip_checkov
from infra.constructs.pipeline import dead_letter_queue, event_pattern

PROVENANCE_ROOT = PROVENANCE_PREFIX.split("/", 1)[0] + "/"  # "provenance/"
TRAIL_REQUIREMENT = (
    "The provenance rule needs an active CloudTrail trail logging write management events in this region "
    "(synthesis is offline and cannot check; run: aws cloudtrail get-trail-status --name <trail>). Without one, "
    "the classifier falls back to CloudTrail LookupEvents (2 requests/s per account). Deploy with "
    "-c create_management_trail=true to create a minimal trail."
)
ORGANIZATION_TRAIL_REQUIREMENT = (
    "The member accounts forward their launch calls only while an organization trail (or a trail in each member "
    "account) logs write management events in every member region (synthesis is offline and cannot check; run in "
    "the management account: aws cloudtrail describe-trails --query 'trailList[?IsOrganizationTrail]'). Without "
    "one, the classifier falls back to LookupEvents in each member account (2 requests/s). Deploy with "
    "-c create_organization_trail=true to create one."
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
        key: MessagingKey,
        trail: TrailPlan,
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
        self.dead_letter_queue = _dead_letter_queue(self, key, removal_policy)
        self.rule = self.add_bus(None, "LaunchCalls")
        self._plan = trail
        self.trail = _management_trail(self, audit, trail, removal_policy) if trail.create else None

    def add_bus(self, bus: events.IEventBus | None, construct_id: str) -> events.Rule:
        """Rules on ``bus`` (None: the account's default bus) sending launch calls to the provenance function: the
        SageMaker calls (``construct_id``, returned) and AWS Batch's SubmitServiceJob (``<construct_id>Batch``)."""
        sagemaker, batch = work_launch_patterns()
        rules = [
            events.Rule(
                self,
                rule_id,
                event_bus=bus,
                description=f"FLOPs Meter: {what} -> provenance function",
                event_pattern=event_pattern(pattern),
                targets=[
                    targets.LambdaFunction(
                        self.function.function,
                        retry_attempts=2,
                        max_event_age=Duration.hours(6),
                        dead_letter_queue=self.dead_letter_queue,
                    )
                ],
            )
            for rule_id, what, pattern in (
                (construct_id, "SageMaker calls that create training work or open a training session", sagemaker),
                (f"{construct_id}Batch", "AWS Batch SubmitServiceJob calls", batch),
            )
        ]
        return rules[0]

    @property
    def trail_output(self) -> str:
        if self.trail is not None:
            return self.trail.trail_arn
        return ORGANIZATION_TRAIL_REQUIREMENT if self._plan.organization_id else TRAIL_REQUIREMENT


@dataclass(frozen=True)
class TrailPlan:
    """Whether the stack creates the trail the launch calls need, and whose: this account and region
    (``organization_id`` None), or the organization's (every account and region)."""

    create: bool = False
    organization_id: str | None = None


def _dead_letter_queue(scope: Construct, key: MessagingKey, removal_policy: RemovalPolicy) -> sqs.Queue:
    """Launch calls EventBridge could not deliver to the provenance function (its own: never the classifier's)."""
    queue = dead_letter_queue(scope, key, removal_policy)
    key.allow_eventbridge_delivery()
    acknowledge(
        queue,
        "AwsSolutions-SQS3",
        "This queue is the dead-letter queue of the provenance rules' Lambda targets (EventBridge DeadLetterConfig).",
    )
    return queue


def _management_trail(
    scope: Construct, audit: AuditBucket, trail: TrailPlan, removal_policy: RemovalPolicy
) -> cloudtrail.Trail:
    """A trail of write management events into its own bucket: this account and region, or (``organization_id``)
    every account and region of the organization."""
    organization = trail.organization_id is not None
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
        # A disposable stage empties the trail's bucket on delete, so `make destroy` does not stop on it.
        auto_delete_objects=removal_policy == RemovalPolicy.DESTROY,
    )
    created = cloudtrail.Trail(
        scope,
        "OrganizationTrail" if organization else "ManagementTrail",
        bucket=bucket,
        is_multi_region_trail=organization,
        include_global_service_events=organization,
        is_organization_trail=organization,
        org_id=trail.organization_id,
        management_events=cloudtrail.ReadWriteType.WRITE_ONLY,
        enable_file_validation=True,
    )
    if trail.organization_id is not None:
        _allow_organization_delivery(created, bucket, trail.organization_id)
    else:
        skip_checkov(
            created,
            "CKV_AWS_67",
            "A minimal trail for this stack's region: the launch calls and the tamper events it feeds to EventBridge "
            "are this region's; an all-region trail is the account's own choice (create_management_trail=false).",
        )
    acknowledge(created, "AwsSolutions-IAM5", "CloudTrail's own bucket policy, written by CDK.")
    skip_checkov(
        created,
        "CKV_AWS_35",
        "The trail exists so that EventBridge sees the launch calls; its S3 copy is a by-product kept 90 days in a "
        "private, TLS-only, SSE-S3 bucket (a CMK's policy would have to admit CloudTrail for every account).",
    )
    return created


def _allow_organization_delivery(trail: cloudtrail.Trail, bucket: s3.Bucket, organization_id: str) -> None:
    """CloudTrail delivers the organization's logs under ``AWSLogs/<organization id>/``. CDK writes that statement
    only for a named trail, and conditions it on ``aws:SourceArn`` with this stack's account, which is wrong when the
    compliance account is CloudTrail's delegated administrator: the management account owns an organization trail
    a delegated administrator creates. So it is written here, on the delivery path and ACL AWS documents."""
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid="OrganizationTrailWrite",
            principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
            actions=["s3:PutObject"],
            resources=[bucket.arn_for_objects(f"AWSLogs/{organization_id}/*")],
            conditions={"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}},
        )
    )
    Annotations.of(trail).acknowledge_warning(
        "@aws-cdk/aws-cloudtrail:missingTrailNameForOrganizationTrail",
        "The organization delivery statement is written by _allow_organization_delivery, without CDK's SourceArn.",
    )
