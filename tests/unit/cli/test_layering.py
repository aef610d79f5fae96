"""The command line's floor plan: ``cli/`` parses and renders, the use cases live in ``compliance/`` (which never
imports ``cli/``), and no import circle runs through ``cli/``, ``compliance/`` or ``local/`` — counting imports
inside functions and ``importlib`` calls too, which a module-level check misses."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "flopsmeter"
AREAS = ("cli", "compliance", "local")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["flopsmeter", *path.relative_to(PACKAGE).with_suffix("").parts]
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(module: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """Every flopsmeter module ``module`` imports, anywhere in it (``from pkg import sub`` counts as ``pkg.sub``)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base = ".".join(anchor[: len(anchor) - node.level + 1] + ([node.module] if node.module else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module":
            names = [n for n in known if n.startswith(module.rsplit(".", 1)[0] + ".")]  # any sibling: assume all
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                yield name


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {m: set(_imports(m, p, known)) for m, p in known.items()}


def test_compliance_never_imports_the_cli() -> None:
    graph = _graph()
    wrong = {m: sorted(i for i in imps if i.startswith("flopsmeter.cli")) for m, imps in graph.items()}
    assert {m: i for m, i in wrong.items() if i and m.startswith("flopsmeter.compliance")} == {}


def test_no_import_circle_through_the_cli_compliance_or_local() -> None:
    graph = _graph()
    circles = []
    for start in (m for m in graph if m.split(".")[1:2] and m.split(".")[1] in AREAS):
        seen, stack = set(), [(start, [start])]
        while stack:
            node, trail = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    circles.append(" -> ".join([*trail, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*trail, nxt]))
    assert circles == []
