"""The domain imports nothing outside the standard library and itself (so the training job can use it bare)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "flopsmeter" / "domain"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: inside the package
                continue
            names.add(node.module or "")
    return names


def _allowed(name: str) -> bool:
    top = name.split(".")[0]
    return name == "flopsmeter.domain" or name.startswith("flopsmeter.domain.") or top in sys.stdlib_module_names


def test_domain_imports_only_stdlib_and_itself() -> None:
    files = sorted(DOMAIN.rglob("*.py"))
    assert len(files) >= 8  # the check really saw the package
    offenders = {f"{p.relative_to(DOMAIN)}: {n}" for p in files for n in _imports(p) if not _allowed(n)}
    assert not offenders, f"non-stdlib imports in flopsmeter/domain: {sorted(offenders)}"


def test_the_checker_catches_forbidden_imports(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import boto3\nfrom pydantic import BaseModel\nfrom flopsmeter.audit import record\nimport json\n")
    assert {n for n in _imports(bad) if not _allowed(n)} == {"boto3", "pydantic", "flopsmeter.audit"}
