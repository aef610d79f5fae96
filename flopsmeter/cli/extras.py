"""Which extra each command needs, read from the installed distribution's own metadata (pyproject.toml's
``[project.optional-dependencies]``), so a missing one is named in one line instead of a traceback.

The pre-flight commands (``estimate``, ``classify``, ``gate``) need none: the base install runs them.
"""

from __future__ import annotations

import importlib.util
import re
from importlib import metadata

DISTRIBUTION = "aiact-flopsmeter"
COMMAND_EXTRAS = {
    "query": "cli",
    "verify": "cli",
    "report": "cli",
    "compact": "cli",
    "reevaluate": "cli",
    "local": "local",
    "demo": "local",
}
TRAINING_MODULES = ("torch", "transformers", "peft")  # what the demo's tiny fine-tuning imports
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def install_hint(extra: str) -> str:
    return f"pip install '{DISTRIBUTION}[{extra}]'"


def extra_requirements(extra: str) -> list[str]:
    """The distribution names the extra requires (empty when this package's metadata is not installed)."""
    try:
        requires = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return []
    names = []
    for line in requires:
        marker = _EXTRA.search(line)
        name = _NAME.match(line)
        if marker and marker.group(1) == extra and name:
            names.append(name.group(1))
    return names


def missing_distributions(extra: str) -> list[str]:
    missing = []
    for name in extra_requirements(extra):
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def missing_extra_line(command: str | None) -> str | None:
    """One line naming the extra ``command`` needs and what of it is missing; None when nothing is."""
    extra = COMMAND_EXTRAS.get(command or "")
    if extra is None:
        return None
    missing = missing_distributions(extra)
    if not missing:
        return None
    return f"`flopsmeter {command}` needs the {extra} extra (missing: {', '.join(missing)}): {install_hint(extra)}"


def training_available() -> bool:
    """True when the demo's tiny fine-tuning can run (torch, transformers and peft importable)."""
    return all(importlib.util.find_spec(name) is not None for name in TRAINING_MODULES)
