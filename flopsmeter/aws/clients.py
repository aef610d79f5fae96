"""boto3 clients, created lazily once per process (Lambda container) with explicit retries and timeouts.

boto3 is imported inside the getter so that importing a handler stays cheap. botocore honours
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` itself, so the same code talks to the local emulator.
"""

from __future__ import annotations

import functools
from typing import Any

CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 20
MAX_ATTEMPTS = 4  # in all, first try included (botocore "standard" mode: backoff with jitter on throttling and 5xx)


@functools.cache
def client(service: str, region: str | None = None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},  # "max_attempts" would be 1 + 4
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        user_agent_extra="flopsmeter",
    )
    return boto3.session.Session().client(service, region_name=region, config=config)  # type: ignore[call-overload]
