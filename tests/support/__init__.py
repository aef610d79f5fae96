"""Test helpers shared across the suite: in-memory fakes of the service's ports (``fakes``), the one fake Lambda
context and SQS event builder (``lambda_context``). Tests import helpers from here, never from ``conftest.py``."""
