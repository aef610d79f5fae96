"""Errors of the compliance use cases (query, verify, report, pre-flight), told apart by type.

``InvalidRequest`` is a request that cannot run as given (the CLI exits 2); every other ``FlopsMeterError`` is a
failure of the work itself (the CLI exits 1).
"""

from __future__ import annotations

from flopsmeter.errors import FlopsMeterError


class InvalidRequest(FlopsMeterError):
    """A request the use case cannot run as given: options that conflict, a value out of range (CLI exit 2)."""


class QueryError(FlopsMeterError):
    """A query could not run (bad SQL, engine failure)."""
