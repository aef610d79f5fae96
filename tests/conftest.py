"""Shared test set-up: Powertools in test mode, fake AWS credentials, never a real AWS endpoint."""

from __future__ import annotations

import os

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "flopsmeter-test")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "FlopsMeterTest")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "1")
os.environ.setdefault("POWERTOOLS_DEV", "0")
# Fake credentials and region: moto intercepts calls; nothing may reach a real account.
for _key, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_REGION": "eu-west-1",
}.items():
    os.environ[_key] = _value
os.environ.pop("AWS_PROFILE", None)
os.environ["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
