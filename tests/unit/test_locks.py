"""The lock files agree with each other and with what their make targets run: the same version of a package in
every lock, the CPU torch of requirements/torch-cpu.txt, and every third-party package the CDK app imports (app.py,
infra/, the flopsmeter modules they import at module level) in requirements/cdk.txt, which is all that
``make synth`` / ``deploy`` install."""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOCKS = REPO / "requirements"


def _pins(name: str) -> dict[str, str]:
    pins = {}
    for line in (LOCKS / name).read_text().splitlines():
        found = re.match(r"^([A-Za-z0-9._-]+)==(\S+)", line)
        if found:
            pins[re.sub(r"[-_.]+", "-", found[1].lower())] = found[2]
    return pins


def test_every_lock_pins_the_same_versions_and_the_cpu_torch() -> None:
    dev, demo, cdk = _pins("dev.txt"), _pins("demo.txt"), _pins("cdk.txt")
    assert {k: v for k, v in demo.items() if dev.get(k) != v} == {}
    assert {k: v for k, v in cdk.items() if dev.get(k) != v} == {}
    torch = re.search(r"^torch==(\S+)", (LOCKS / "torch-cpu.txt").read_text(), re.MULTILINE)[1]  # type: ignore[index]
    assert torch.endswith("+cpu") and dev["torch"] == demo["torch"] == torch
    assert not any(name.startswith(("nvidia-", "triton")) for name in dev)  # no CUDA build slipped in


def _module_file(name: str) -> Path | None:
    for candidate in (REPO / (name.replace(".", "/") + ".py"), REPO / name.replace(".", "/") / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _third_party_imports_of_the_cdk_app() -> set[str]:
    """Top-level names of the packages app.py pulls in at import time, through the repository's own modules."""
    seen: set[Path] = set()
    todo, outside = [REPO / "app.py"], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            else:
                continue
            for name in names:
                own = _module_file(name)
                if own is not None:
                    todo.append(own)
                    parts = name.split(".")  # a package's __init__ runs first
                    todo.extend(p for i in range(1, len(parts)) if (p := _module_file(".".join(parts[:i]))))
                elif name.split(".")[0] not in sys.stdlib_module_names and not (REPO / name.split(".")[0]).exists():
                    outside.add(name.split(".")[0])
    return outside


def test_the_cdk_lock_holds_everything_the_cdk_app_imports() -> None:
    cdk = _pins("cdk.txt")
    distributions = metadata.packages_distributions()
    missing = {}
    for top in _third_party_imports_of_the_cdk_app():
        names = {re.sub(r"[-_.]+", "-", d.lower()) for d in distributions.get(top, [top])}
        if not names & set(cdk):
            missing[top] = sorted(names)
    assert missing == {}, f"make synth/deploy would lack {missing}: add them to the infra extra, then make lock"
