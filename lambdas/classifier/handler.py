"""Lambda entry point (the CDK stack points here); the body is flopsmeter.functions.classifier."""

from flopsmeter.functions.classifier import lambda_handler

__all__ = ["lambda_handler"]
