"""Lambda entry point (the CDK stack points here); the body is flopsmeter.functions.hyperpod."""

from flopsmeter.functions.hyperpod import lambda_handler

__all__ = ["lambda_handler"]
