"""The meter's rooms: no import circle inside ``flopsmeter/training`` (module-level imports, read with ``ast``; the
package itself counts as a module, so ``from flopsmeter.training import x`` in a submodule is an edge back to it)."""

from __future__ import annotations

import ast
from pathlib import Path

TRAINING = Path(__file__).resolve().parents[3] / "flopsmeter" / "training"
PACKAGE = "flopsmeter.training"


def _name(path: Path) -> str:
    return PACKAGE if path.name == "__init__.py" else f"{PACKAGE}.{path.stem}"


def _imports(path: Path) -> set[str]:
    """Modules of the package imported when ``path`` is imported (``if TYPE_CHECKING:`` included: strict)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        nodes = node.body if isinstance(node, ast.If) else [node]
        for inner in nodes:
            if isinstance(inner, ast.Import):
                found.update(alias.name for alias in inner.names)
            elif isinstance(inner, ast.ImportFrom) and inner.module:
                found.add(inner.module)
                found.update(f"{inner.module}.{alias.name}" for alias in inner.names)
    return found


def graph(folder: Path = TRAINING) -> dict[str, set[str]]:
    known = {_name(p): p for p in folder.glob("*.py")}
    return {name: {m for m in _imports(path) if m in known and m != name} for name, path in known.items()}


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_meter_has_no_import_circle() -> None:
    edges = graph()
    assert len(edges) > 20 and PACKAGE in edges
    assert cycle(edges) is None, " -> ".join(cycle(edges) or [])


def test_the_check_finds_a_circle_through_the_package(tmp_path: Path) -> None:
    (tmp_path / "__init__.py").write_text("from flopsmeter.training.meter import FlopsMeter\n")
    (tmp_path / "meter.py").write_text("from flopsmeter.training import distributed\n")
    (tmp_path / "distributed.py").write_text("import math\n")
    assert cycle(graph(tmp_path)) == [PACKAGE, f"{PACKAGE}.meter", PACKAGE]
