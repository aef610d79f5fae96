"""The classifier service's errors, told apart by type: transient ones are retried, permanent ones are not.

A transient error leaves the SQS message on the queue (it comes back after the visibility timeout, and the
redrive policy moves it to the dead-letter queue after maxReceiveCount receives); a permanent one is sent to the
dead-letter queue at once by the classifier handler, with its reason as message attributes (or, if that send
fails, reported as a batch-item failure like a transient one). Neither is ever swallowed.
"""

from __future__ import annotations

from flopsmeter.domain.errors import FlopsMeterError


class ServiceError(FlopsMeterError):
    """Base class of the classifier service's errors."""


class TransientError(ServiceError):
    """Throttling, 5xx, a timeout or a fact that is not there yet: try again later."""


class PermanentError(ServiceError):
    """Retrying cannot help: the message goes to the dead-letter queue at once, with this reason attached."""


class MalformedEvent(PermanentError):
    """The message is not a SageMaker Training Job State Change event we can read."""


class JobNotFound(PermanentError):
    """DescribeTrainingJob does not know the job (an event for a job that no longer exists)."""


class CloudTrailPending(TransientError):
    """CreateTrainingJob is not in CloudTrail yet (it lags ~15 min); retry until the wait limit."""


class ParentRecordPending(TransientError):
    """The parent job of a lineage chain has no audit record yet; retry until the wait limit."""


class TransientAuditWriteError(TransientError):
    """The audit bucket throttled or failed (5xx, timeout): the record was not written; retry."""


class PermanentAuditWriteError(PermanentError):
    """The audit bucket refused the record (access denied, missing bucket, invalid lock settings)."""
