"""The one error family of the package: every error it raises on purpose is a ``FlopsMeterError``, told apart by
type, never by message text.

Two branches say what a caller should do: ``TransientError`` (throttling, a 5xx, a timeout, a fact that is not
there yet: try again later) and ``PermanentError`` (retrying cannot help). In the classifier a transient error
leaves the SQS message on the queue (it comes back after the visibility timeout; the redrive policy moves it to
the dead-letter queue after maxReceiveCount receives); a permanent one is sent to the dead-letter queue at once,
with its reason as message attributes. Neither is ever swallowed.

What failed is a second axis: the audit bucket (``AuditStoreError``), the digest signer (``DigestError``) and
Athena (``AthenaError``) each have one base class that catches both kinds, and a transient and a permanent leaf.
The AWS adapters (``flopsmeter.aws``) decide the kind from botocore's error with ``flopsmeter.aws.errors``; code
above them catches these types directly and never translates one into another.

Errors that are neither (the domain's ``InvalidFlops``, ``InvalidModelSpec``, ...: a caller's input the formulas
cannot use) subclass ``FlopsMeterError`` alone. This module imports nothing: the domain builds on it and stays
standard-library only.
"""

from __future__ import annotations


class FlopsMeterError(Exception):
    """Base class of every error this package raises on purpose."""


class TransientError(FlopsMeterError):
    """Throttling, 5xx, a timeout or a fact that is not there yet: try again later."""


class PermanentError(FlopsMeterError):
    """Retrying cannot help: the message goes to the dead-letter queue at once, with this reason attached."""


class InvalidValue(PermanentError, ValueError):
    """A value an adapter cannot use (an account id that is not one, a retention under a year): the caller's
    mistake, so retrying cannot help. A ``ValueError`` too, for callers that check arguments that way."""


# --- what the service is told about a job ----------------------------------------------------------------------


class MalformedEvent(PermanentError):
    """The message is not an event we can read (a job state change, a launch call)."""


class JobNotFound(PermanentError):
    """The service does not know the job (an event for a job that no longer exists)."""


class ClusterNotFound(PermanentError):
    """A HyperPod report names a cluster that DescribeCluster does not know (in the sender's account)."""


class RoleNotFound(PermanentError):
    """A HyperPod report names a role that IAM GetRole does not know (in the sender's account)."""


class CloudTrailPending(TransientError):
    """The job's launch call is not in CloudTrail yet (it lags ~15 min); retry until the wait limit."""


class CloudTrailThrottled(TransientError):
    """LookupEvents stayed throttled (or this lookup's budget ran out): retry later, never fail the record."""


class ParentRecordPending(TransientError):
    """The parent job of a lineage chain has no audit record yet; retry until the wait limit."""


class ChildRecordPending(TransientError):
    """A job that read a late parent's artifacts has no audit record yet (it is being classified): the parent's
    message is retried so the child is re-assessed once its record exists (issue 23)."""


class JobNotSettled(TransientError):
    """A job's facts are not final yet (a training session still Stopping, a Batch attempt not recorded yet)."""


class MemberRoleUnavailable(TransientError):
    """AssumeRole into a member account's reader role failed: retried; the reason names the role and the error."""

    def __init__(self, message: str, *, account: str, role_arn: str, code: str) -> None:
        super().__init__(message)
        self.account = account
        self.role_arn = role_arn
        self.code = code


class RegionNotServed(PermanentError):
    """A job in a region this deployment does not read (neither its own region nor a member region): no reconciler
    looks there either, so it is dead-lettered at once, with this reason and an alert (``service.regions``)."""

    def __init__(self, message: str, *, account: str | None, region: str, served: tuple[str, ...]) -> None:
        super().__init__(message)
        self.account = account
        self.region = region
        self.served = served


# --- the audit bucket ---------------------------------------------------------------------------------------------


class AuditStoreError(FlopsMeterError):
    """The audit bucket refused or failed an operation (either kind: catch this for "any store failure")."""


class TransientStoreError(AuditStoreError, TransientError):
    """The audit bucket throttled or failed (5xx, timeout): nothing was written or read; retry later."""


class PermanentStoreError(AuditStoreError, PermanentError):
    """The audit bucket refused (access denied, missing bucket, invalid lock settings) or holds something unreadable."""


# --- the digest signer (KMS) --------------------------------------------------------------------------------------


class DigestError(FlopsMeterError):
    """Signing a digest failed (either kind)."""


class TransientDigestError(DigestError, TransientError):
    """Throttling, a 5xx or a timeout from KMS: retry later."""


class PermanentDigestError(DigestError, PermanentError):
    """The signing key is refused, disabled or missing."""


# --- Athena -------------------------------------------------------------------------------------------------------


class AthenaError(FlopsMeterError):
    """An Athena query did not succeed (either kind)."""


class TransientAthenaError(AthenaError, TransientError):
    """Athena throttled, failed with a 5xx, or the query was still running when the wait ran out."""


class PermanentAthenaError(AthenaError, PermanentError):
    """The query failed or was cancelled (Athena's reason attached), or the call was refused."""


# --- Glue catalog -------------------------------------------------------------------------------------------------


class CatalogError(FlopsMeterError):
    """The Glue catalog could not be read (either kind)."""


class TransientCatalogError(CatalogError, TransientError):
    """Glue throttled, failed with a 5xx, or left part of a batch unread."""


class PermanentCatalogError(CatalogError, PermanentError):
    """The database or table is missing, or the call was refused."""
