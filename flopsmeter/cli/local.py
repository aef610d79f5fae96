"""CLI commands: local (placeholder until its issue lands)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add this module's commands to the flopsmeter parser."""
    del sub


__all__ = ["register", "argparse"]
