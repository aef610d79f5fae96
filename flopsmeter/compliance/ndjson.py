"""Record files to newline-delimited JSON for DuckDB: one big file reads far faster (and in far less memory)
than many small ones. Each line is the record with its key added as ``_key``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from flopsmeter.errors import FlopsMeterError


class NotARecordError(FlopsMeterError):
    """A file where a record was expected holds something else."""


def record_line(key: str, body: bytes, *, strict: bool = False) -> bytes:
    """One NDJSON line (records are canonical one-line JSON, so usually no parsing is needed).

    ``strict``: the file must be a record (a JSON object with a ``job`` field), else NotARecordError naming it;
    otherwise a file that is not a JSON object becomes a line with only its key (a row of nulls).
    """
    text = body.strip()
    if strict or b"\n" in text or not text.startswith(b"{"):
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if strict and not (isinstance(document, dict) and isinstance(document.get("job"), dict)):
            raise NotARecordError(f"{key} is not an audit record (a JSON object with a 'job' field)")
        text = json.dumps(document if isinstance(document, dict) else {}, separators=(",", ":")).encode()
    head = json.dumps({"_key": key}, separators=(",", ":")).encode()[:-1]
    return head + (b"}" if text == b"{}" else b"," + text[1:])


def write_ndjson(path: Path, files: Iterable[tuple[str, Path]], *, strict: bool = False) -> int:
    """Write one line per ``(key, file)``; returns the number of lines."""
    count = 0
    with open(path, "wb") as out:
        for key, file in files:
            out.write(record_line(key, file.read_bytes(), strict=strict) + b"\n")
            count += 1
    return count
