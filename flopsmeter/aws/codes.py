"""The AWS error codes every decision about an error reads, standard library only (the meter inside a training job
imports them without botocore). The predicates over them are in ``flopsmeter.aws.errors``."""

# A control-plane API's request-rate limit (what CloudTrail's LookupEvents answers when its 2/s is spent): backed off
# in place by ``flopsmeter.aws.lookup_budget``. Transient, like every code below.
THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"})
# Retryable: throttling (rate limits, S3's SlowDown, KMS's), timeouts and clock skew (a retry re-signs the request),
# server-side failures. A 5xx or 429 HTTP status is transient whatever its code.
TRANSIENT_CODES = THROTTLING_CODES | frozenset(
    {
        "Throttled",
        "ThrottledException",
        "SlowDown",
        "LimitExceededException",
        "ProvisionedThroughputExceededException",
        "RequestThrottled",
        "RequestThrottledException",
        "KMSThrottlingException",
        "PriorRequestNotComplete",
        "RequestTimeout",
        "RequestTimeoutException",
        "RequestTimeTooSkewed",
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
# A missing object, resource or parameter (S3 answers a HEAD with the bare status code).
NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound", "ResourceNotFound", "ResourceNotFoundException"})
# SageMaker and Bedrock answer a describe of an unknown job "ValidationException: Requested resource not found".
UNKNOWN_RESOURCE_CODES = NOT_FOUND_CODES | {"ValidationException"}
MISSING_PARAMETER_CODES = frozenset({"ParameterNotFound"})  # SSM GetParameter
# S3 answers a HEAD (or GET) of a missing key with 403 instead of 404 to a caller without s3:ListBucket on it.
ACCESS_DENIED_CODES = frozenset({"403", "AccessDenied", "Forbidden"})
# A conditional write (``If-None-Match: *``) that lost: an object is already there, or a concurrent write is.
CONDITIONAL_WRITE_CONFLICT_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})
# The caller may not call the API at all: its identity is denied or its token is not valid. What the meter inside a
# training job gives up on at once (retrying cannot help); the service's S3 reads use ``ACCESS_DENIED_CODES``.
NOT_AUTHORISED_CODES = ACCESS_DENIED_CODES | frozenset(
    {"AccessDeniedException", "UnauthorizedOperation", "InvalidClientTokenId"}
)
