"""Lambda entry point (the CDK stack points here); the body is flopsmeter.functions.provenance."""

from flopsmeter.functions.provenance import lambda_handler

__all__ = ["lambda_handler"]
