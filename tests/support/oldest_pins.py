"""The oldest versions the package declares for the meter's stack, as pip pins (``make test-oldest`` installs them
into their own virtualenv and runs the meter's tests and ``bench.accuracy`` there).

    python -m tests.support.oldest_pins      # transformers==5.0 peft==0.18 trl==1.16 datasets==4.7
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
STACK = {"training": ("transformers", "peft"), "dev": ("trl", "datasets")}  # extra -> the packages pinned from it
_FLOOR = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)(?:\[[^]]*\])?\s*>=\s*(?P<version>[0-9][0-9.]*)")


def floors(pyproject: Path = PYPROJECT) -> dict[str, str]:
    """{package: its declared floor} for the packages in ``STACK`` (ValueError when one has no ``>=`` floor)."""
    extras = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    found: dict[str, str] = {}
    for extra, names in STACK.items():
        for requirement in extras[extra]:
            match = _FLOOR.match(requirement)
            if match and match["name"] in names:
                found[match["name"]] = match["version"]
    missing = sorted({n for names in STACK.values() for n in names} - set(found))
    if missing:
        raise ValueError(f"no '>=' floor declared in pyproject.toml for {', '.join(missing)}")
    return found


def pins(pyproject: Path = PYPROJECT) -> list[str]:
    return [f"{name}=={version}" for name, version in floors(pyproject).items()]


if __name__ == "__main__":
    print(" ".join(pins()))
