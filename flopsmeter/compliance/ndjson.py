"""Record files to newline-delimited JSON for DuckDB: one big file reads far faster (and in far less memory)
than many small ones. Each line is the record with its key added as ``_key``.

A file that is not JSON at all (truncated, damaged) is refused with its own path, never passed on for DuckDB to
report against the temporary file; ``damaged_file`` maps a DuckDB error about a line back to the file it came from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

from flopsmeter.domain.errors import FlopsMeterError


class NotARecordError(FlopsMeterError):
    """A file where a record was expected holds something else."""


_LINE = re.compile(r"\bline (\d+)\b")


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


def damaged_file(error: Exception, files: list[Path]) -> str | None:
    """The file behind a DuckDB error that names a line of the NDJSON written from ``files`` (1-based), if any."""
    found = _LINE.search(str(error))
    if not found or not 0 < int(found.group(1)) <= len(files):
        return None
    return str(files[int(found.group(1)) - 1])
