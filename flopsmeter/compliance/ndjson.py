"""Record files to newline-delimited JSON for DuckDB: one big file reads far faster (and in far less memory)
than many small ones. Each line is the record with its key added as ``_key``.

A file that is not JSON at all (truncated, damaged) is refused with its own path, never passed on for DuckDB to
report against the temporary file; ``blaming_the_file`` maps a DuckDB error about a line back to the file it came from.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from flopsmeter.errors import FlopsMeterError


class NotARecordError(FlopsMeterError):
    """A file where a record was expected holds something else."""


def record_line(key: str, body: bytes, *, strict: bool = False, where: str | None = None) -> bytes:
    """One NDJSON line (records are canonical one-line JSON, so usually no parsing is needed).

    A file that is not JSON raises NotARecordError naming ``where`` (its path; else the key). ``strict``: the file
    must be a record (a JSON object with a ``job`` field); otherwise valid JSON that is not an object becomes a line
    with only its key (a row of nulls).
    """
    text = body.strip()
    if strict or b"\n" in text or not text.startswith(b"{") or not text.endswith(b"}"):
        try:
            document = json.loads(text)
        except ValueError as err:
            raise NotARecordError(f"{where or key} is not valid JSON (truncated or damaged? {err})") from None
        if strict and not (isinstance(document, dict) and isinstance(document.get("job"), dict)):
            raise NotARecordError(f"{where or key} is not an audit record (a JSON object with a 'job' field)")
        text = json.dumps(document if isinstance(document, dict) else {}, separators=(",", ":")).encode()
    head = json.dumps({"_key": key}, separators=(",", ":")).encode()[:-1]
    return head + (b"}" if text == b"{}" else b"," + text[1:])


def write_ndjson(path: Path, files: Iterable[tuple[str, Path]], *, strict: bool = False) -> int:
    """Write one line per ``(key, file)``; returns the number of lines."""
    count = 0
    with open(path, "wb") as out:
        for key, file in files:
            out.write(record_line(key, file.read_bytes(), strict=strict, where=str(file)) + b"\n")
            count += 1
    return count


@contextmanager
def blaming_the_file(files: list[Path]) -> Iterator[None]:
    """Around DuckDB reading the NDJSON written from ``files``: when it fails, the first of ``files`` that is not valid
    JSON is named (the user's file, not the temporary NDJSON one) in a NotARecordError; else the error goes on."""
    try:
        yield
    except Exception:  # duckdb.Error; duckdb is imported by the callers only
        for file in files:  # only after a failure: the fast path does not parse every record
            try:
                json.loads(file.read_bytes())
            except ValueError as err:
                raise NotARecordError(f"{file} is not valid JSON (damaged? {err})") from None
        raise
