"""Lambda entry point (the CDK stack points here); the body is flopsmeter.functions.compaction."""

from flopsmeter.functions.compaction import lambda_handler

__all__ = ["lambda_handler"]
