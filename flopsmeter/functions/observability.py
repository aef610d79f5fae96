"""One Logger, Metrics and Tracer for the functions. Service name and namespace come from the POWERTOOLS_* env
vars the stack sets; the fallbacks (``flopsmeter.contract``) keep a bare local run from failing at the first
metric flush."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

from flopsmeter.contract import SERVICE_METRICS_NAMESPACE, SERVICE_NAME

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or SERVICE_NAME)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or SERVICE_METRICS_NAMESPACE)
tracer = Tracer()
