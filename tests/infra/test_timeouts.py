"""The AWS clients' worst-case retry time fits inside the classifier's function timeout.

A call that outlives the function makes Lambda fail the whole batch (every record's receive count goes up); the
retry budget of one call must end first, so that only the record that needed it is retried.
"""

from __future__ import annotations

from flopsmeter.aws import clients
from infra.constructs.pipeline import CLASSIFIER_TIMEOUT, VISIBILITY_TIMEOUT


def test_one_calls_worst_case_retry_time_fits_in_the_function_timeout():
    assert clients.worst_case_call_seconds() < CLASSIFIER_TIMEOUT.to_seconds()


def test_worst_case_counts_every_attempt_and_back_off():
    per_attempt = clients.CONNECT_TIMEOUT_S + clients.READ_TIMEOUT_S
    assert clients.worst_case_call_seconds() >= clients.MAX_ATTEMPTS * per_attempt
    assert VISIBILITY_TIMEOUT.to_seconds() >= 6 * CLASSIFIER_TIMEOUT.to_seconds()
