"""Helpers shared by the tests: in-memory fakes of the service's ports (``fakes``), the one fake Lambda context and
SQS event builder (``lambda_context``), the record factory (``records``), a signed trail (``trail``), tiny model
configs (``tiny_models``). Tests import helpers from here, never from ``conftest.py`` or ``bench/``."""
