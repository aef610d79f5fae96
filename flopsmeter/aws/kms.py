"""Signing digest strings with an asymmetric KMS key (RSA, SIGN_VERIFY); errors follow ``flopsmeter.aws.errors``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from flopsmeter.aws.errors import translate
from flopsmeter.contract import SIGNING_ALGORITHM
from flopsmeter.errors import PermanentDigestError, TransientDigestError

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient


class KmsSigner:
    """Signs digest strings with an asymmetric KMS key (RSA, SIGN_VERIFY)."""

    def __init__(self, kms: KMSClient, key_id: str) -> None:
        self.kms = kms
        self.key_id = key_id
        self._der: bytes | None = None
        self._arn: str | None = None

    def _call(self, what: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return dict(getattr(self.kms, what)(**kwargs))
        except (ClientError, BotoCoreError) as err:
            raise translate(
                err,
                f"KMS {what} with key {self.key_id}",
                transient=TransientDigestError,
                permanent=PermanentDigestError,
            ) from err

    def public_key_der(self) -> bytes:
        if self._der is None:
            reply = self._call("get_public_key", KeyId=self.key_id)
            self._der, self._arn = bytes(reply["PublicKey"]), str(reply.get("KeyId") or self.key_id)
        return self._der

    @property
    def key_arn(self) -> str:
        self.public_key_der()
        return self._arn or self.key_id

    def sign(self, message: bytes) -> bytes:
        reply = self._call(
            "sign", KeyId=self.key_id, Message=message, MessageType="RAW", SigningAlgorithm=SIGNING_ALGORITHM
        )
        return bytes(reply["Signature"])
