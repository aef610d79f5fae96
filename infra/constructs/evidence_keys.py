"""What every key the evidence depends on (the audit key, the digest signing key) carries in its policy.

Without the audit key the locked records are unreadable; without the signing key no digest verifies again. So each
key policy denies ``kms:ScheduleKeyDeletion`` and ``kms:DisableKey`` to every principal. That is no lockout: the
policy keeps CDK's default statement (the account root may do ``kms:*``), so an administrator can still change the
key policy, and that ``PutKeyPolicy`` alerts (``infra/constructs/tamper.py``) before a deletion could be scheduled
(which then waits 7 to 30 days).
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

KEY_DESTRUCTION = ("kms:ScheduleKeyDeletion", "kms:DisableKey")


def deny_key_destruction(key: kms.Key) -> None:
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="DenyKeyDestruction",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=list(KEY_DESTRUCTION),
            resources=["*"],
        )
    )
