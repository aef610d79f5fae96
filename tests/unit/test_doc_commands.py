"""Every ``make`` target the README, the docs and the examples name exists and at least starts: ``make -n`` resolves
it, and each Python module or script its recipe runs is there (``make bench-coldstart`` once ran a path that no
longer imported). ``make help`` lists each of them."""

from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted((REPO / "examples").glob("*.py"))]
CODE = re.compile(r"```.*?```|`[^`\n]+`", re.DOTALL)  # fenced blocks and inline code: commands, not prose
MAKE = re.compile(r"(?:^|[\s;&(|`])make ([a-z][a-z0-9-]*)")


def named_targets() -> list[str]:
    found = set()
    for doc in DOCS:
        for span in CODE.findall(doc.read_text(encoding="utf-8")):
            found.update(MAKE.findall(span))
    return sorted(found)


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    return subprocess.run(
        ["make", "--no-print-directory", *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def _words(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError:  # a shell loop's continuation backslashes: plain words are enough to find `python -m X`
        return line.split()


def test_the_docs_name_targets_at_all() -> None:
    assert {"demo", "test", "install", "deploy", "bench-coldstart", "test-wheel", "lock"} <= set(named_targets())


@pytest.mark.parametrize("target", named_targets())
def test_each_named_make_target_starts(target: str) -> None:
    done = _make("-n", target)
    assert done.returncode == 0, f"make -n {target}: {done.stderr[-2000:]}"
    for line in done.stdout.splitlines():
        words = _words(line) if "python" in line else []
        for at, word in enumerate(words[:-1]):
            if word.endswith("python") and words[at + 1] == "-m":
                module = words[at + 2]
                assert importlib.util.find_spec(module) is not None, f"make {target} runs python -m {module}"
            elif word.endswith("python") and words[at + 1].endswith(".py"):
                assert (REPO / words[at + 1]).is_file(), f"make {target} runs {words[at + 1]}"


def test_make_help_lists_every_named_target() -> None:
    listed = {line.split()[0] for line in _make("help").stdout.splitlines() if line.strip()}
    assert set(named_targets()) <= listed


def test_the_first_deploy_checklist_is_numbered_and_self_contained() -> None:
    text = (REPO / "docs" / "infra.md").read_text(encoding="utf-8")
    checklist = text.split("## First deploy checklist", 1)[1].split("\n## ", 1)[0]
    steps = [int(n) for n in re.findall(r"^\*\*(\d+)\.", checklist, re.MULTILINE)]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 5, steps
    assert "AWS CLI" in checklist.split("```", 1)[0]  # a prerequisite, named before the first command
    assert not re.search(r"\bissue \d+|#\d+\b", checklist)  # nothing that points into this project's tracker
