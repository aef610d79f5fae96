"""cdk-nag acknowledgements, one line each, next to the resource they are about.

cdk-nag 3.x runs as a CDK policy-validation plugin (``Validations.of(app).add_plugins(AwsSolutionsChecks(app))``);
any finding that is not acknowledged fails synth. A finding id may carry its detail, e.g.
``AwsSolutions-IAM5[Resource::*]``.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on ``construct`` (and the resources below it)."""
    if len(reason) < 10:
        raise ValueError(f"acknowledging {rule_id} needs a real reason, got {reason!r}")
    Validations.of(construct).acknowledge(Acknowledgment(id=rule_id, reason=reason))
