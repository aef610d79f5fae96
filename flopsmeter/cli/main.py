"""``flopsmeter``: one argparse tree; each command group lives in its own module with a ``register``.

Errors print one human line and exit non-zero: 2 for a request that cannot run as given (``InvalidRequest``), 1 for
failures. Heavy imports
(boto3, duckdb, torch) happen inside the command functions, so ``flopsmeter --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from flopsmeter.cli import audit, local, preflight, query
from flopsmeter.cli.extras import COMMAND_EXTRAS, install_hint, missing_extra_line
from flopsmeter.compliance.errors import InvalidRequest
from flopsmeter.errors import FlopsMeterError

# Command-group modules, each with ``register(subparsers)``; every command sets ``func(args) -> int``.
COMMAND_MODULES = (preflight, local, query, audit)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"flopsmeter: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="flopsmeter", description="EU AI Act compute compliance for LLM fine-tuning on SageMaker")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    missing = missing_extra_line(args.command)
    if missing:
        print(f"flopsmeter: {missing}", file=sys.stderr)
        return 1
    try:
        return int(args.func(args) or 0)
    except InvalidRequest as err:
        print(f"flopsmeter: error: {err}", file=sys.stderr)
        return 2
    except FlopsMeterError as err:
        print(f"flopsmeter: {err}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as err:  # an extra's package removed after install, or run from a bare checkout
        extra = COMMAND_EXTRAS.get(args.command, "cli")
        print(f"flopsmeter: `{args.command}` needs {err.name}, not installed: {install_hint(extra)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("flopsmeter: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
