"""The one transient/permanent error taxonomy for every AWS call (S3 store, KMS signer, EventBridge, SNS, SQS,
CloudWatch, CloudTrail, SageMaker).

Transient (retry later): throttling codes, any 5xx, 429, request timeouts, and every ``BotoCoreError`` (connection
errors, read timeouts: botocore already retried them). Everything else is permanent (AccessDenied, a missing
bucket or key, validation errors): retrying cannot help. Adapters turn botocore's errors into our own with
``translate`` (service errors) or their own ``is_transient`` check, never with a list of their own.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from flopsmeter.service.errors import PermanentError, ServiceError, TransientError

# Error codes AWS services use for throttling or a transient server-side failure (all retryable). A 5xx or 429
# HTTP status is transient whatever its code.
TRANSIENT_CODES = frozenset(
    {
        # throttling
        "Throttling",
        "ThrottlingException",
        "Throttled",
        "ThrottledException",
        "SlowDown",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "LimitExceededException",
        "ProvisionedThroughputExceededException",
        "RequestThrottled",
        "RequestThrottledException",
        "KMSThrottlingException",
        "PriorRequestNotComplete",
        # timeouts and clock skew (a retry re-signs the request)
        "RequestTimeout",
        "RequestTimeoutException",
        "RequestTimeTooSkewed",
        # server-side failures
        "InternalError",
        "InternalFailure",
        "InternalServiceError",
        "InternalServerError",
        "InternalErrorException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "KMSInternalException",
        "500",
        "503",
    }
)


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def http_status(err: ClientError) -> int:
    try:
        return int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    except (TypeError, ValueError):
        return 0


def is_transient_code(code: str) -> bool:
    """A bare error code (e.g. a PutEvents entry's ``ErrorCode``): transient when it is a throttling/5xx code."""
    return code in TRANSIENT_CODES


def is_transient(err: ClientError | BotoCoreError) -> bool:
    """True when retrying later can help (see the module docstring for the rule)."""
    if isinstance(err, BotoCoreError):
        return True  # connection errors, read timeouts (botocore's own retries are spent)
    status = http_status(err)
    return is_transient_code(error_code(err)) or status >= 500 or status == 429


def translate(err: ClientError | BotoCoreError, what: str) -> ServiceError:
    """Our error for a botocore one; the message names the operation and the AWS error code."""
    cls = TransientError if is_transient(err) else PermanentError
    return cls(f"{what}: {err}")
