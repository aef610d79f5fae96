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


REPO = DOMAIN.parents[1]
PACKAGE = REPO / "flopsmeter"
# Small rooms: no module over MAX_MODULE_LINES in the library, the Lambda shims or the CDK code.
ROOMS = ("flopsmeter", "lambdas", "infra")
MAX_MODULE_LINES = 500


def test_the_library_never_imports_lambdas_or_edits_sys_path() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    imports = {f"{p.relative_to(REPO)}: {n}" for p in files for n in _imports(p) if n.split(".")[0] == "lambdas"}
    assert not imports, f"flopsmeter/ imports lambdas/: {sorted(imports)}"
    edits = [str(p.relative_to(REPO)) for p in files if "sys.path" in p.read_text(encoding="utf-8")]
    assert not edits, f"flopsmeter/ edits sys.path: {edits}"


def test_each_lambda_handler_is_wiring_only() -> None:
    handlers = sorted((REPO / "lambdas").glob("*/handler.py"))
    assert {p.parent.name for p in handlers} == {"classifier", "reconciler", "digest", "provenance", "compaction"}
    for path in handlers:
        body = ast.parse(path.read_text(encoding="utf-8")).body
        kinds = {type(node).__name__ for node in body}
        assert kinds <= {"Expr", "ImportFrom", "Assign"}, f"{path}: {kinds}"  # docstring, import, __all__
        (imported,) = [node for node in body if isinstance(node, ast.ImportFrom)]
        assert imported.module == f"flopsmeter.functions.{path.parent.name}"
        assert [a.name for a in imported.names] == ["lambda_handler"]
    assert not (REPO / "lambdas" / "shared").exists()


def test_no_module_is_over_the_limit() -> None:
    sizes = {
        str(p.relative_to(REPO)): len(p.read_text(encoding="utf-8").splitlines())
        for room in ROOMS
        for p in (REPO / room).rglob("*.py")
    }
    assert len(sizes) > 100
    assert {k: v for k, v in sizes.items() if v > MAX_MODULE_LINES} == {}
