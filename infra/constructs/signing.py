"""The digest signing key: an asymmetric KMS key (``SIGNING_KEY_SPEC``, SIGN_VERIFY), retained, and its grants.

Signatures must stay verifiable as long as the digests exist, so the key is never deleted with the stack and its
policy denies scheduling its deletion or disabling it to everyone (as the audit key's does); the digest function
may sign with ``SIGNING_ALGORITHM`` only, and readers may fetch the public key and verify.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from flopsmeter.contract import SIGNING_ALGORITHM, SIGNING_KEY_SPEC
from infra.constructs.evidence_keys import deny_key_destruction


class DigestSigningKey(Construct):
    """Exposes ``key``."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description=f"FLOPs Meter hourly digest signatures ({SIGNING_ALGORITHM}); verifiers need its public key",
            key_spec=kms.KeySpec[SIGNING_KEY_SPEC],
            key_usage=kms.KeyUsage.SIGN_VERIFY,
            removal_policy=RemovalPolicy.RETAIN,
        )
        deny_key_destruction(self.key)

    def grant_sign(self, role: iam.IRole) -> None:
        """Sign with ``SIGNING_ALGORITHM`` only, and read the public key."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="SignDigests",
                actions=["kms:Sign"],
                resources=[self.key.key_arn],
                conditions={"StringEquals": {"kms:SigningAlgorithm": SIGNING_ALGORITHM}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(sid="PublicKey", actions=["kms:GetPublicKey"], resources=[self.key.key_arn])
        )

    def grant_readers(self, policy: iam.ManagedPolicy) -> None:
        policy.add_statements(
            iam.PolicyStatement(
                sid="VerifyDigests", actions=["kms:GetPublicKey", "kms:Verify"], resources=[self.key.key_arn]
            )
        )
