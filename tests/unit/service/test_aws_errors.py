"""The one transient/permanent taxonomy (flopsmeter.aws.errors), pinned, and every adapter following it."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from flopsmeter.aws.errors import TRANSIENT_CODES, is_transient, translate
from flopsmeter.aws.kms import KmsSigner
from flopsmeter.aws.notifier import Notifier
from flopsmeter.aws.sagemaker import SageMakerJobs
from flopsmeter.aws.store import AuditStore
from flopsmeter.errors import (
    AuditStoreError,
    DigestError,
    PermanentError,
    TransientDigestError,
    TransientError,
    TransientStoreError,
)


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


TABLE = [
    # (code, HTTP status, transient?)
    ("Throttling", 400, True),
    ("ThrottlingException", 400, True),
    ("SlowDown", 503, True),
    ("RequestLimitExceeded", 400, True),
    ("TooManyRequestsException", 429, True),
    ("KMSThrottlingException", 400, True),
    ("ProvisionedThroughputExceededException", 400, True),
    ("RequestTimeout", 400, True),
    ("RequestTimeTooSkewed", 403, True),
    ("InternalError", 500, True),
    ("ServiceUnavailable", 503, True),
    ("KMSInternalException", 500, True),
    ("SomethingNew", 502, True),  # any 5xx
    ("SomethingElse", 429, True),  # 429 whatever its code
    ("AccessDenied", 403, False),
    ("AccessDeniedException", 400, False),
    ("NoSuchBucket", 404, False),
    ("NoSuchKey", 404, False),
    ("ValidationException", 400, False),
    ("InvalidObjectState", 403, False),
    ("DisabledException", 400, False),
    ("NotFoundException", 400, False),
]


@pytest.mark.parametrize(("code", "status", "transient"), TABLE)
def test_the_taxonomy_table(code: str, status: int, transient: bool) -> None:
    err = client_error(code, status)
    assert is_transient(err) is transient
    assert isinstance(translate(err, "op"), TransientError if transient else PermanentError)


@pytest.mark.parametrize(
    "err",
    [
        EndpointConnectionError(endpoint_url="https://s3.eu-west-1.amazonaws.com"),
        ConnectTimeoutError(endpoint_url="https://kms.eu-west-1.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://events.eu-west-1.amazonaws.com"),
    ],
)
def test_connection_errors_and_timeouts_are_transient(err: Exception) -> None:
    assert is_transient(err) and isinstance(translate(err, "op"), TransientError)


def test_one_list_of_codes() -> None:
    """The codes every adapter used to keep in lists of their own, now in the one list."""
    assert {"Throttling", "SlowDown", "KMSThrottlingException", "InternalFailure", "503"} <= TRANSIENT_CODES
    assert not {"AccessDenied", "NoSuchKey", "ValidationException"} & TRANSIENT_CODES


@pytest.mark.parametrize(("code", "status", "transient"), [("SlowDown", 503, True), ("AccessDenied", 403, False)])
def test_every_adapter_follows_the_taxonomy(code: str, status: int, transient: bool) -> None:
    s3 = boto3.client("s3", region_name="eu-west-1")
    with Stubber(s3) as stub:
        stub.add_client_error("get_object", code, http_status_code=status)
        with pytest.raises(TransientStoreError if transient else AuditStoreError) as caught:
            AuditStore(s3, "bucket").get("records/v1/x.json")
        assert isinstance(caught.value, TransientStoreError) is transient
    kms = boto3.client("kms", region_name="eu-west-1")
    with Stubber(kms) as stub:
        stub.add_client_error("sign", code, http_status_code=status)
        with pytest.raises(DigestError) as signed:
            KmsSigner(kms, "alias/k").sign(b"m")
        assert isinstance(signed.value, TransientDigestError) is transient
    sagemaker = boto3.client("sagemaker", region_name="eu-west-1")
    with Stubber(sagemaker) as stub:
        stub.add_client_error("list_tags", code, http_status_code=status)
        with pytest.raises(TransientError if transient else PermanentError):
            SageMakerJobs(sagemaker).tags("arn:aws:sagemaker:eu-west-1:123456789012:training-job/j")
    events = boto3.client("events", region_name="eu-west-1")
    with Stubber(events) as stub:
        stub.add_response("put_events", {"FailedEntryCount": 1, "Entries": [{"ErrorCode": code, "ErrorMessage": "m"}]})
        with pytest.raises(TransientError if transient else PermanentError):
            Notifier(events, None).recorded({"a": 1}, resources=[])
