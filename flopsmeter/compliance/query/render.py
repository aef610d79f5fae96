"""Output of a query: a table for people (rich), JSON or CSV.

A table fits the width it is given (the terminal's): when its columns cannot fit side by side (``SELECT *`` has
about 180), each row is shown as a block of ``column | value`` lines instead, as ``psql``'s expanded display does.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

_CSV_NATIVE = {str, int, float, bool, type(None)}  # written by csv.writer as they are
PIPE_WIDTH = 200  # output to a file or a pipe: no terminal to fit
MIN_COLUMN = 10  # narrower than this, a column's values fold into unreadable slivers


@dataclass(frozen=True)
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    seconds: float


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2e}" if abs(value) >= 1e6 or (value and abs(value) < 1e-3) else f"{value:.4g}"
    if isinstance(value, dict | list):
        return json.dumps(_plain(value))
    return str(_plain(value))


def _csv_value(value: Any) -> Any:
    return _cell(value) if isinstance(value, dict | list) else _plain(value)


def _csv_rows(rows: list[tuple[Any, ...]]) -> Any:
    """Rows for csv.writer: only columns holding something other than str/int/float/bool/None are converted
    (a column scan by type is far cheaper than a Python call per value: 100 000 rows in well under a second)."""
    if not rows:
        return rows
    convert = [i for i, column in enumerate(zip(*rows, strict=True)) if not set(map(type, column)) <= _CSV_NATIVE]
    if not convert:
        return rows
    return ([_csv_value(v) if i in convert else v for i, v in enumerate(row)] for row in rows)


def terminal_width() -> int:
    """The terminal's width (``COLUMNS`` wins), or ``PIPE_WIDTH`` when the output is not a terminal."""
    return shutil.get_terminal_size((PIPE_WIDTH, 24)).columns


def render(result: Result, fmt: str, *, width: int = PIPE_WIDTH) -> str:
    if fmt == "json":
        return json.dumps([dict(zip(result.columns, map(_plain, row), strict=True)) for row in result.rows], indent=1)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(result.columns)
        writer.writerows(_csv_rows(result.rows))
        return buffer.getvalue()
    return render_table(result.columns, [[_cell(v) for v in row] for row in result.rows], width=width)


def render_table(columns: Sequence[str], rows: Sequence[Sequence[str]], *, width: int = PIPE_WIDTH) -> str:
    """A table at most ``width`` characters wide; rows as blocks when the columns cannot fit side by side."""
    if len(columns) * (MIN_COLUMN + 3) > width:
        return render_blocks(columns, rows, width=width)
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False, header_style="bold")
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console = Console(file=io.StringIO(), width=width, record=True, force_terminal=False, color_system=None)
    console.print(table)
    console.print(f"{len(rows)} row(s)")
    return console.export_text()


def render_blocks(columns: Sequence[str], rows: Sequence[Sequence[str]], *, width: int = PIPE_WIDTH) -> str:
    """Each row as a block of ``column | value`` lines (values wrapped to ``width``), for results too wide for a
    table."""
    name_width = min(max((len(c) for c in columns), default=0), max(MIN_COLUMN, width // 3))
    value_width = max(MIN_COLUMN, width - name_width - 3)
    lines = []
    for number, row in enumerate(rows, start=1):
        lines.append(f"-[ row {number} ]".ljust(min(width, 40), "-"))
        for name, value in zip(columns, row, strict=True):
            wrapped = textwrap.wrap(value, value_width, break_on_hyphens=False) or [""]
            lines.append(f"{name[:name_width].ljust(name_width)} | {wrapped[0]}")
            lines.extend(f"{'':{name_width}} | {more}" for more in wrapped[1:])
    lines.append(f"{len(rows)} row(s)")
    return "\n".join(lines) + "\n"
