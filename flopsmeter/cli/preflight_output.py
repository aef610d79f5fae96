"""How ``classify``, ``estimate`` and ``gate`` print: JSON, or tables for people.

Tables use rich when it is installed (the ``cli`` and ``local`` extras) and plain aligned text when it is not (the
base install), with the same rows and words either way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from flopsmeter.compliance.obligations_view import obligation_lines
from flopsmeter.domain.classification import Classification
from flopsmeter.domain.numbers import format_flops
from flopsmeter.domain.pretrain import PretrainCompute

_STYLE = {"below": "green", "approaching": "yellow", "exceeds": "bold red"}
CLASSIFICATION_COLUMNS = ("policy", "scenario", "threshold", "ratio", "outcome")


def print_json(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, indent=2, allow_nan=False))


def print_classification(
    heading: str, pretrain: PretrainCompute, result: Classification, obligations: dict[str, Any] | None = None
) -> None:
    out = _Out()
    out.line(heading, bold=True)
    out.line(f"Base model pretraining compute: {format_flops(pretrain.flops)} ({pretrain.source}: {pretrain.basis})")
    _classification_table(out, result)
    print_obligations(out, obligations)
    for warning in result.warnings:
        out.warning(warning)


def print_estimate(report: dict[str, Any], result: Classification) -> None:
    out = _Out()
    model, tuning = report["model"], report["fine_tuning"]
    out.line(
        f"{model['config']}",
        bold=True,
        rest=f" ({model['model_type'] or 'unknown type'}, {model['total_params'] / 1e9:.2f}B "
        f"params, {model['active_params'] / 1e9:.2f}B active), {tuning['method']}, seq_len {report['seq_len']}, "
        f"{report['tokens']:,} tokens, formula {report['formula_version']}",
    )
    rows: list[tuple[str, ...]] = [(name, format_flops(value)) for name, value in report["breakdown"].items()]
    rows += [
        ("total", format_flops(report["total_flops"])),
        ("per token", format_flops(report["flops_per_token"])),
        ("gradient-checkpointing recompute (not included)", format_flops(report["recompute_flops"])),
        ("6·N·D (comparison)", format_flops(report["comparison"]["six_nd"])),
        ("AWS sample (4·N_total + 2·N_trainable)·D", format_flops(report["comparison"]["aws_sample"])),
    ]
    out.table("Training FLOPs", ("component", "FLOPs"), rows, right=("FLOPs",), bold_rows=("total",))
    ceiling = report.get("hardware_ceiling")
    if ceiling:
        out.line(
            f"Hardware ceiling: {ceiling['instance_count']} x {ceiling['instance_type']} "
            f"({ceiling['chips_per_instance']} x {ceiling['accelerator']}, {ceiling['precision']} peak) for "
            f"{ceiling['seconds'] / 3600:g} h = {format_flops(ceiling['flops'])} "
            f"(primary policy: {ceiling['primary_outcome']}, ratio {ceiling['ratio']:.3f})"
        )
    pretrain = report["pretrain"]
    out.line(f"Base model pretraining compute: {format_flops(pretrain['flops'])} ({pretrain['source']}: "
             f"{pretrain['basis']})")  # fmt: skip
    _classification_table(out, result)
    print_obligations(out, report.get("obligations"))
    for warning in report["warnings"]:
        out.warning(warning)


def print_obligations(out: _Out, obligations: dict[str, Any] | None) -> None:
    """Issue 23: the obligations, and the Art. 52(1) due date with its zone, wherever a crossing is shown."""
    for i, text in enumerate(obligation_lines(obligations)):
        out.line(text, bold=i == 0 or text.startswith("NOTIFY"))


def print_managed(report: dict[str, Any], result: Classification) -> None:
    """A managed customization job's pre-flight: the service's estimate, as the record will hold it."""
    out = _Out()
    block = report["managed"]
    est = block["estimate"]
    out.line(
        f"{block['service']}: {block['base_model_name']}",
        bold=True,
        rest=f" ({est['technique']}, {'adapters' if block['adapters'] else 'full fine-tuning'}, seq_len "
        f"{report['seq_len']}, {report['tokens']:,} tokens: {est['tokens_basis']})",
    )
    rows: list[tuple[str, ...]] = [(name, format_flops(value)) for name, value in report["breakdown"].items()]
    rows += [
        ("central", format_flops(est["central"])),
        (f"classified (upper end of +/-{est['uncertainty']:.0%})", format_flops(report["total_flops"])),
    ]
    out.table("Estimated FLOPs (as the record will classify them)", ("component", "FLOPs"), rows,
              right=("FLOPs",))  # fmt: skip
    out.line(f"Per-token cost: {est['cost_basis']}")
    pretrain = report["pretrain"]
    out.line(f"Base model pretraining compute: {format_flops(pretrain['flops'])} ({pretrain['source']}: "
             f"{pretrain['basis']})")  # fmt: skip
    _classification_table(out, result)
    print_obligations(out, report.get("obligations"))
    for warning in report["warnings"]:
        out.warning(warning)


def _classification_table(out: _Out, result: Classification) -> None:
    rows = []
    for r in result.results:
        name = f"{r.policy} (primary)" if r.policy == result.primary_policy else r.policy
        rows.append((name, str(r.scenario), format_flops(r.threshold), f"{r.ratio:.3f}", str(r.outcome)))
    out.table("Classification", CLASSIFICATION_COLUMNS, rows, right=("threshold", "ratio"), styled="outcome")


class _Out:
    """rich's console when rich is installed, else plain text on stdout."""

    def __init__(self) -> None:
        try:
            from rich.console import Console
        except ModuleNotFoundError:
            self.console: Any = None
        else:
            self.console = Console(highlight=False, soft_wrap=True)

    def line(self, text: str, *, bold: bool = False, rest: str = "") -> None:
        if self.console is None:
            print(text + rest)
            return
        from rich.text import Text

        self.console.print(Text.assemble((text, "bold" if bold else ""), rest))

    def warning(self, text: str) -> None:
        if self.console is None:
            print(f"warning: {text}")
            return
        from rich.text import Text

        self.console.print(Text.assemble(("warning:", "yellow"), f" {text}"))

    def table(
        self,
        title: str,
        columns: tuple[str, ...],
        rows: Sequence[tuple[str, ...]],
        *,
        right: tuple[str, ...] = (),
        bold_rows: tuple[str, ...] = (),
        styled: str | None = None,
    ) -> None:
        if self.console is None:
            print(plain_table(title, columns, rows, right=right))
            return
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column, justify="right" if column in right else "left")
        for row in rows:
            style = "bold" if row[0] in bold_rows else None
            cells = list(row)
            if styled is not None:
                at = columns.index(styled)
                cells[at] = f"[{_STYLE.get(cells[at], '')}]{cells[at]}[/]" if cells[at] in _STYLE else cells[at]
            table.add_row(*cells, style=style)
        self.console.print(table)


def plain_table(
    title: str, columns: tuple[str, ...], rows: Sequence[tuple[str, ...]], *, right: tuple[str, ...] = ()
) -> str:
    """An aligned text table (no rich): a title line, a header, a rule, the rows."""
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]

    def fmt(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.rjust(w) if name in right else cell.ljust(w)
            for cell, w, name in zip(cells, widths, columns, strict=True)
        ).rstrip()

    return "\n".join([title, fmt(columns), "  ".join("-" * w for w in widths), *(fmt(r) for r in rows)])
