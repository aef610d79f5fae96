"""botocore errors turned into the service's own: transient (retry) or permanent (dead-letter)."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from flopsmeter.audit.store import is_transient
from flopsmeter.service.errors import PermanentError, ServiceError, TransientError

# Throttling codes some services use beyond the ones flopsmeter.audit.store knows (all retryable).
MORE_TRANSIENT_CODES = frozenset(
    {
        "Throttled",
        "ThrottledException",
        "LimitExceededException",
        "ProvisionedThroughputExceededException",
        "RequestThrottled",
        "RequestThrottledException",
        "PriorRequestNotComplete",
        "InternalFailure",
        "InternalServiceError",
        "InternalServerError",
        "InternalErrorException",
        "KMSThrottlingException",
    }
)


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def translate(err: ClientError | BotoCoreError, what: str) -> ServiceError:
    """Our error for a botocore one; the message names the operation and the AWS error code."""
    if isinstance(err, ClientError) and error_code(err) in MORE_TRANSIENT_CODES:
        return TransientError(f"{what}: {err}")
    if is_transient(err):
        return TransientError(f"{what}: {err}")
    return PermanentError(f"{what}: {err}")
