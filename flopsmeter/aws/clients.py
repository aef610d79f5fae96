"""boto3 clients, created lazily once per process (Lambda container) with explicit retries and timeouts.

boto3 is imported inside the getter so that importing a handler stays cheap. botocore honours
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` itself, so the same code talks to the local emulator.
"""

from __future__ import annotations

import functools
from typing import Any

# One call's worst case - every attempt timing out, plus the standard mode's back-off between attempts - must fit
# in the classifier's function timeout (tests/infra/test_timeouts.py): a Lambda timeout fails the whole batch.
CONNECT_TIMEOUT_S = 2
READ_TIMEOUT_S = 6
MAX_ATTEMPTS = 4  # in all, first try included (botocore "standard" mode: backoff with jitter on throttling and 5xx)
MAX_BACKOFF_S = 20  # botocore standard mode: min(20 s, random(0..1) x 2**attempt)


def worst_case_call_seconds() -> float:
    """Upper bound of one AWS call with every attempt timing out (connect + read) and the longest back-offs."""
    backoffs = sum(min(MAX_BACKOFF_S, 1 << attempt) for attempt in range(1, MAX_ATTEMPTS))
    return float(MAX_ATTEMPTS * (CONNECT_TIMEOUT_S + READ_TIMEOUT_S) + backoffs)


def _config() -> Any:
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},  # "max_attempts" would be 1 + 4
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        user_agent_extra="flopsmeter",
    )


@functools.cache
def client(service: str, region: str | None = None) -> Any:
    import boto3

    return boto3.session.Session().client(service, region_name=region, config=_config())  # type: ignore[call-overload]


def client_with_credentials(credentials: dict[str, Any], service: str, region: str | None = None) -> Any:
    """A client acting with STS temporary ``credentials`` (an assumed member role), same retries and timeouts."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    return session.client(service, region_name=region, config=_config())  # type: ignore[call-overload]
