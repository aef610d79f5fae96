"""Reading a package's imports from its source (``ast``, nothing imported): which modules a module imports, and the
import circles among a package's modules. Used by ``tests/unit/test_architecture.py``."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path


def module_name(path: Path, root: Path, package: str | None = None) -> str:
    """``flopsmeter/aws/store.py`` -> ``flopsmeter.aws.store`` (``root`` the package's folder, ``package`` its dotted
    name, by default the folder's name); a package's ``__init__.py`` is the package."""
    parts = [*(package or root.name).split("."), *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path, package: str | None = None) -> dict[str, Path]:
    """Every module of the package at ``root``, by dotted name."""
    return {module_name(path, root, package): path for path in sorted(root.rglob("*.py"))}


def _is_type_checking(node: ast.stmt) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements that run when the module is imported (``if``/``try`` blocks included, ``if TYPE_CHECKING:``,
    function and class bodies not)."""
    for node in body:
        if isinstance(node, ast.If):
            if not _is_type_checking(node):
                yield from _module_level(node.body)
                yield from _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _module_level(block)
        else:
            yield node


def imported_names(path: Path, name: str, *, module_level: bool) -> set[str]:
    """Dotted names imported by the module ``name`` at ``path``: ``import a.b`` gives ``a.b``; ``from a import b``
    gives ``a.b`` and ``a`` (``b`` may be a module or a name in ``a``). Relative imports are resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    nodes = _module_level(tree.body) if module_level else ast.walk(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def import_graph(root: Path, *, exclude: tuple[str, ...] = ()) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports at module level, leaving out the modules of the
    sub-packages named in ``exclude`` (``"training"`` leaves out ``<package>.training`` and everything under it)."""
    top = root.name
    skipped = tuple(f"{top}.{sub}" for sub in exclude)
    known = {n: p for n, p in modules(root).items() if not any(n == s or n.startswith(f"{s}.") for s in skipped)}
    return {
        name: {other for other in imported_names(path, name, module_level=True) if other in known and other != name}
        for name, path in known.items()
    }


def import_cycles(root: Path, *, exclude: tuple[str, ...] = ()) -> list[list[str]]:
    """The import circles among the package's modules (module-level imports only): each strongly connected
    component of more than one module, sorted. Empty when the imports point one way."""
    graph = import_graph(root, exclude=exclude)
    return sorted(sorted(c) for c in _components(graph) if len(c) > 1)


def _components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative: the graph may be deep)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            step = next(edges, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = len(index)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(graph[step]))))
                elif step in on_stack:
                    low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(component)
    return found
