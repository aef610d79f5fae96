"""Lambda entry point (the CDK stack points here); the body is flopsmeter.functions.reconciler."""

from flopsmeter.functions.reconciler import lambda_handler

__all__ = ["lambda_handler"]
