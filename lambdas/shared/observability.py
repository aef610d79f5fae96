"""One Logger, Metrics and Tracer per function. Service name and namespace come from the POWERTOOLS_* env vars
the stack sets (POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE), so code and infra agree; the fallbacks
only keep a bare local run (no stack) from failing at the first metric flush."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

DEFAULT_SERVICE = "flopsmeter"
DEFAULT_NAMESPACE = "FlopsMeterService"  # not "FlopsMeter": that namespace holds the training meter's metrics

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or DEFAULT_SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE)
tracer = Tracer()
