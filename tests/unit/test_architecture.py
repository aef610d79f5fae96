"""The floors and their arrows: the domain imports nothing outside the standard library, itself and the error family
(so the training job can use it bare); ``aws/`` never imports ``service/``; ``service/`` imports no adapter;
``audit/`` no AWS SDK; every error ``aws/`` defines or raises is in the one family; no import circle."""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import sys
import typing
from pathlib import Path
from types import UnionType

import pytest

from flopsmeter.errors import FlopsMeterError, PermanentError, TransientError
from tests.support.imports import import_cycles, imported_names, modules

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
    inside = name == "flopsmeter.domain" or name.startswith("flopsmeter.domain.") or name == "flopsmeter.errors"
    return inside or top in sys.stdlib_module_names


def test_domain_imports_only_stdlib_itself_and_the_error_family() -> None:
    files = sorted(DOMAIN.rglob("*.py"))
    assert len(files) >= 8  # the check really saw the package
    offenders = {f"{p.relative_to(DOMAIN)}: {n}" for p in files for n in _imports(p) if not _allowed(n)}
    assert not offenders, f"non-stdlib imports in flopsmeter/domain: {sorted(offenders)}"
    family = PACKAGE_ROOT / "errors.py"
    assert {n for n in _imports(family) if n.split(".")[0] not in sys.stdlib_module_names} == set()


def test_the_checker_catches_forbidden_imports(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import boto3\nfrom pydantic import BaseModel\nfrom flopsmeter.audit import record\nimport json\n")
    assert {n for n in _imports(bad) if not _allowed(n)} == {"boto3", "pydantic", "flopsmeter.audit"}


PACKAGE_ROOT = DOMAIN.parent


def _every_import(layer: str) -> dict[str, set[str]]:
    """Module -> every name it imports, inside functions too, for the modules of ``flopsmeter.<layer>``."""
    return {
        name: imported_names(path, name, module_level=False)
        for name, path in modules(PACKAGE_ROOT).items()
        if name == f"flopsmeter.{layer}" or name.startswith(f"flopsmeter.{layer}.")
    }


def _offenders(layer: str, *forbidden: str) -> dict[str, set[str]]:
    found = {
        module: {n for n in names if any(n == f or n.startswith(f"{f}.") for f in forbidden)}
        for module, names in _every_import(layer).items()
    }
    return {module: names for module, names in found.items() if names}


def test_the_adapters_never_import_the_use_cases() -> None:
    assert len(_every_import("aws")) >= 10
    assert _offenders("aws", "flopsmeter.service", "flopsmeter.functions", "flopsmeter.cli") == {}


def test_the_use_cases_import_no_adapter_and_no_sdk() -> None:
    assert len(_every_import("service")) >= 10
    assert _offenders("service", "flopsmeter.aws", "flopsmeter.functions", "boto3", "botocore", "mypy_boto3_s3") == {}


def test_the_audit_format_imports_no_aws_sdk() -> None:
    assert len(_every_import("audit")) >= 5
    assert _offenders("audit", "boto3", "botocore", "flopsmeter.aws", "flopsmeter.service") == {}


def _raised_classes(value: object) -> list[type]:
    """The exception classes a ``raise`` of ``value`` can raise: the class itself, or what a factory returns."""
    if inspect.isclass(value):
        return [value]
    hints = typing.get_type_hints(value) if callable(value) else {}
    returned = hints.get("return")
    if isinstance(returned, UnionType) or typing.get_origin(returned) is typing.Union:
        return list(typing.get_args(returned))
    return [returned] if inspect.isclass(returned) else [object]  # an unannotated factory is an offence


def _resolve(module: object, node: ast.expr) -> object | None:
    """What ``node`` (a name or dotted name) is in ``module``'s globals; None for a local (a re-raise)."""
    if isinstance(node, ast.Name):
        return getattr(module, node.id, getattr(builtins, node.id, None))
    if isinstance(node, ast.Attribute):
        owner = _resolve(module, node.value)
        return None if owner is None else getattr(owner, node.attr, None)
    return None


def family_offences(root: Path, package: str) -> list[str]:
    """Classes defined in the (importable) package at ``root`` that are exceptions outside ``FlopsMeterError``, and
    ``raise`` statements there whose exception is not a ``TransientError`` or a ``PermanentError``."""
    offences: list[str] = []
    for name, path in modules(root, package).items():
        module = importlib.import_module(name)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                cls = getattr(module, node.name, None)
                if inspect.isclass(cls) and issubclass(cls, BaseException) and not issubclass(cls, FlopsMeterError):
                    offences.append(f"{name}:{node.lineno} defines {node.name} outside the family")
            elif isinstance(node, ast.Raise) and node.exc is not None:
                target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                value = _resolve(module, target)
                if value is None:
                    continue  # a local: re-raising what was caught
                kinds = _raised_classes(value)
                if not all(inspect.isclass(k) and issubclass(k, TransientError | PermanentError) for k in kinds):
                    offences.append(f"{name}:{node.lineno} raises {ast.unparse(target)}, not transient or permanent")
    return offences


def test_every_error_the_adapters_define_or_raise_is_transient_or_permanent() -> None:
    raises = [
        n
        for p in (PACKAGE_ROOT / "aws").glob("*.py")
        for n in ast.walk(ast.parse(p.read_text()))
        if isinstance(n, ast.Raise)
    ]
    assert len(raises) >= 40  # the check really saw the adapters
    assert family_offences(PACKAGE_ROOT / "aws", "flopsmeter.aws") == []


def test_the_family_check_catches_errors_outside_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = (
        "from flopsmeter.errors import FlopsMeterError\n"
        "class Odd(Exception): ...\n"
        "class Vague(FlopsMeterError): ...\n"
        "def f():\n    raise ValueError('x')\n"
        "def g():\n    raise Vague('y')\n"
        "def h(err):\n    raise err\n"
    )
    (tmp_path / "probe").mkdir()
    (tmp_path / "probe" / "__init__.py").write_text("")
    (tmp_path / "probe" / "adapter.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert family_offences(tmp_path / "probe", "probe") == [
        "probe.adapter:2 defines Odd outside the family",
        "probe.adapter:5 raises ValueError, not transient or permanent",
        "probe.adapter:7 raises Vague, not transient or permanent",
    ]


def test_no_import_circle_in_the_package() -> None:
    assert import_cycles(PACKAGE_ROOT) == []


def test_the_circle_check_finds_a_circle_and_ignores_function_level_imports(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("from pkg.sub import b\n")
    (root / "a.py").write_text("from pkg import c\n")
    (root / "c.py").write_text("import json\nif True:\n    from pkg.sub.b import thing\n")
    (root / "sub" / "b.py").write_text("from pkg.a import x\n")
    (root / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import e\n")
    (root / "e.py").write_text("def f():\n    from pkg import d\nfrom . import a\n")
    assert import_cycles(root) == [["pkg.a", "pkg.c", "pkg.sub.b"]]
    assert import_cycles(root, exclude=("sub",)) == []


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
    expected = {"classifier", "reconciler", "digest", "provenance", "compaction", "hyperpod"}
    assert {p.parent.name for p in handlers} == expected
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
