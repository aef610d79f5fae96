"""Scanner suppressions, one line each, next to the resource they are about, each with its reason.

cdk-nag 3.x runs as a CDK policy-validation plugin (``Validations.of(app).add_plugins(AwsSolutionsChecks(app))``);
any finding that is not acknowledged fails synth. A finding id may carry its detail, e.g.
``AwsSolutions-IAM5[Resource::*]``. checkov (``make checkov``, on the synthesized templates) reads its skips
from the resource's ``Metadata.checkov.skip`` list (``id`` + ``comment``), which ``skip_checkov`` writes.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnResource, Validations
from constructs import IConstruct

MIN_REASON = 10


def acknowledge(construct: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on ``construct`` (and the resources below it)."""
    if len(reason) < MIN_REASON:
        raise ValueError(f"acknowledging {rule_id} needs a real reason, got {reason!r}")
    Validations.of(construct).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def skip_checkov(construct: IConstruct, check_id: str, reason: str) -> None:
    """Skip one checkov check on ``construct``'s CloudFormation resource (its default child for an L2)."""
    if len(reason) < MIN_REASON:
        raise ValueError(f"skipping {check_id} needs a real reason, got {reason!r}")
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to annotate")
    metadata = resource.get_metadata("checkov") or {"skip": []}
    metadata["skip"] = [*metadata["skip"], {"id": check_id, "comment": reason}]
    resource.add_metadata("checkov", metadata)
