"""Lambda entry point (the CDK stack points here); the body is flopsmeter.functions.digest."""

from flopsmeter.functions.digest import lambda_handler

__all__ = ["lambda_handler"]
