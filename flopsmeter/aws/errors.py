"""Every decision about a botocore error, in one place: named predicates over AWS error codes, and ``translate``.

Transient (retry later): throttling codes, any 5xx, 429, request timeouts, and every ``BotoCoreError`` (connection
errors, read timeouts: botocore already retried them). Everything else is permanent (AccessDenied, a missing
bucket or key, validation errors): retrying cannot help. The adapters in ``flopsmeter.aws`` ask these predicates
(``is_transient``, ``is_not_found``, ``is_access_denied``, ...) and raise the family of ``flopsmeter.errors`` with
``translate``; no adapter keeps a list of codes of its own.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from flopsmeter.aws.codes import (
    ACCESS_DENIED_CODES,
    CONDITIONAL_WRITE_CONFLICT_CODES,
    MISSING_PARAMETER_CODES,
    NOT_FOUND_CODES,
    THROTTLING_CODES,
    TRANSIENT_CODES,
    UNKNOWN_RESOURCE_CODES,
)
from flopsmeter.errors import PermanentError, TransientError


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def http_status(err: ClientError) -> int:
    try:
        return int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    except (TypeError, ValueError):
        return 0


def _coded(err: ClientError | BotoCoreError, codes: frozenset[str]) -> bool:
    return isinstance(err, ClientError) and error_code(err) in codes


def is_transient_code(code: str) -> bool:
    """A bare error code (e.g. a PutEvents entry's ``ErrorCode``): transient when it is a throttling/5xx code."""
    return code in TRANSIENT_CODES


def is_transient(err: ClientError | BotoCoreError) -> bool:
    """True when retrying later can help (see the module docstring for the rule)."""
    if isinstance(err, BotoCoreError):
        return True  # connection errors, read timeouts (botocore's own retries are spent)
    status = http_status(err)
    return is_transient_code(error_code(err)) or status >= 500 or status == 429


def is_throttling(err: ClientError | BotoCoreError) -> bool:
    """An API's request-rate limit (``THROTTLING_CODES``): worth backing off in place before giving up."""
    return _coded(err, THROTTLING_CODES)


def is_not_found(err: ClientError | BotoCoreError) -> bool:
    """A missing object or resource (S3 404 / NoSuchKey, ResourceNotFound...)."""
    return _coded(err, NOT_FOUND_CODES)


def is_unknown_resource(err: ClientError | BotoCoreError) -> bool:
    """A SageMaker or Bedrock job (or pipeline execution) the service does not know."""
    return _coded(err, UNKNOWN_RESOURCE_CODES)


def is_missing_parameter(err: ClientError | BotoCoreError) -> bool:
    return _coded(err, MISSING_PARAMETER_CODES)


def is_access_denied(err: ClientError | BotoCoreError) -> bool:
    return _coded(err, ACCESS_DENIED_CODES)


def is_conditional_write_conflict(err: ClientError | BotoCoreError) -> bool:
    """``If-None-Match: *`` lost: something is already stored at the key (a duplicate delivery, a concurrent run)."""
    return _coded(err, CONDITIONAL_WRITE_CONFLICT_CODES)


def translate(
    err: ClientError | BotoCoreError,
    what: str,
    *,
    transient: type[TransientError] = TransientError,
    permanent: type[PermanentError] = PermanentError,
) -> TransientError | PermanentError:
    """Our error for a botocore one (``transient`` or ``permanent`` by ``is_transient``); the message names the
    operation and the AWS error."""
    if is_transient(err):
        return transient(f"{what}: {err}")
    return permanent(f"{what}: {err}")
