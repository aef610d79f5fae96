"""Output of a query: a table for people (rich), JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

_CSV_NATIVE = {str, int, float, bool, type(None)}  # written by csv.writer as they are


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


def render(result: Result, fmt: str) -> str:
    if fmt == "json":
        return json.dumps([dict(zip(result.columns, map(_plain, row), strict=True)) for row in result.rows], indent=1)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(result.columns)
        writer.writerows(_csv_rows(result.rows))
        return buffer.getvalue()
    return render_table(result.columns, [[_cell(v) for v in row] for row in result.rows])


def render_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False, header_style="bold")
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console = Console(file=io.StringIO(), width=200, record=True, force_terminal=False, color_system=None)
    console.print(table)
    console.print(f"{len(rows)} row(s)")
    return console.export_text()
