"""boto3 clients for the commands that read AWS, made from ``--endpoint-url`` / ``--region`` and the environment.

A missing region or missing credentials is said in one line, with how to give it, before any call is made (boto3
would otherwise end in a ``NoRegionError`` traceback, or in a credentials error after the first request).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from flopsmeter.compliance.errors import InvalidRequest
from flopsmeter.compliance.source import Aws

NO_REGION = (
    "no AWS region: give --region REGION, or set AWS_DEFAULT_REGION (or a region in your AWS profile: aws configure)"
)
NO_CREDENTIALS = (
    "no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (aws configure, aws sso "
    "login); the local emulator takes any: `flopsmeter local up` prints the exports"
)


def aws_clients(args: argparse.Namespace) -> Aws:
    """``service -> client`` for ``args.endpoint_url`` and ``args.region``; checked on first use."""
    session: Any = None
    region: str | None = None

    def make(service: str) -> Any:
        nonlocal session, region
        if session is None:
            import boto3

            session = boto3.session.Session()
            # AWS_REGION: the AWS CLI and the other SDKs read it, boto3 does not
            region = getattr(args, "region", None) or session.region_name or os.environ.get("AWS_REGION")
            if not region:
                raise InvalidRequest(NO_REGION)
            if session.get_credentials() is None:
                raise InvalidRequest(NO_CREDENTIALS)
        return session.client(service, endpoint_url=getattr(args, "endpoint_url", None), region_name=region)

    return make
