"""The demo's last scenario: what to run next on the files it left (the emulator is gone by then).

The demo pulled a mirror of the audit bucket, with its signed digests, before it tampered with the bucket. Each
command shown here is run first, through the same use cases the CLI calls, so the demo never suggests one that
fails on its own output.
"""

from __future__ import annotations

import os
from pathlib import Path

from rich.table import Table

from flopsmeter.local.demo_session import Demo


def _shown(path: Path) -> str:
    """A path as the reader types it: relative to the working directory when it is below it."""
    try:
        return os.path.relpath(path) if path.resolve().is_relative_to(Path.cwd().resolve()) else str(path)
    except ValueError:
        return str(path)


def next_steps(demo: Demo) -> None:
    from flopsmeter.compliance.query import Preset, QueryRequest, run
    from flopsmeter.compliance.report import write_report
    from flopsmeter.compliance.source import TrailSource
    from flopsmeter.compliance.verify import DirSource, verify

    demo.section("What to run next on the demo's output")
    mirror, report = demo.out_dir / "mirror", demo.out_dir / "report.html"
    verification = verify(DirSource(mirror), max_digest_age=None)
    exceeding = run(QueryRequest(preset=Preset(exceeding=True), source=TrailSource(dir=mirror)), _offline)
    data = write_report(mirror, report, source=str(mirror), verification=verification)
    m, r = _shown(mirror), _shown(report)
    table = Table("command", "what it shows", title="Next", title_justify="left")
    for command, what in (
        (f"flopsmeter query --dir {m} --exceeding", f"the jobs over their threshold ({len(exceeding.result.rows)} here)"
         if exceeding.result else "the jobs over their threshold"),
        (f"flopsmeter query --dir {m} --deadlines", "open Art. 52(1) notification clocks, days left"),
        (f"flopsmeter query --dir {m} --by-principal", "totals per person and base model (splitting flagged)"),
        (f"flopsmeter report --dir {m} --out {r}", f"the HTML report; open file://{report.resolve()} in a browser"),
        (f"flopsmeter verify --dir {m}", "hashes, digests, chain, signatures (OK: pulled after the final digest)"),
        ("flopsmeter local up", "the emulator in the background, for `flopsmeter local replay` of your own events"),
        ("make deploy", "the stack in your AWS account (README: Deploy; `cdk bootstrap` once)"),
    ):  # fmt: skip
        table.add_row(command, what)
    demo.out.print(table, soft_wrap=True)
    demo.check(
        "the suggested next steps run on the demo's output (query, report, verify)",
        verification.ok and exceeding.result is not None and bool(exceeding.result.rows) and not data.errors,
    )


def _offline(service: str) -> None:
    raise AssertionError(f"the demo's next steps read local files only, not {service}")
