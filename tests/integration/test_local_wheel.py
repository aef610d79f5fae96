"""The built wheel stands alone: installed into a fresh venv, ``flopsmeter demo`` runs from an empty directory
outside the checkout, and every one of its self-checks passes.

Offline: the wheel is built from a copy of the sources without build isolation (setuptools from this venv), and
installed with ``--no-deps --no-index``; the third-party dependencies come from this venv's site-packages through
a ``.pth`` line (a plain path line: the editable install's ``.pth`` hooks there are not run, so ``flopsmeter`` can
only resolve to the wheel). ``make test-wheel`` runs this test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.torch]


def _run(args: list[str | Path], *, cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_the_wheel_runs_the_demo_outside_the_checkout(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "flopsmeter", source / "flopsmeter", ignore=shutil.ignore_patterns("__pycache__"))
    wheelhouse = tmp_path / "wheelhouse"
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
        + ["-w", wheelhouse, source],
        cwd=tmp_path,
        env=env,
    )
    (wheel,) = wheelhouse.glob("flopsmeter-*.whl")

    fresh = tmp_path / "fresh"
    _run([sys.executable, "-m", "venv", fresh], cwd=tmp_path, env=env)
    python = fresh / "bin" / "python"
    _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], cwd=tmp_path, env=env)
    fresh_site = Path(
        _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path, env=env).strip()
    )
    (fresh_site / "zz_third_party.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    empty = tmp_path / "empty"
    empty.mkdir()
    where = _run([python, "-c", "import flopsmeter; print(flopsmeter.__file__)"], cwd=empty, env=env).strip()
    assert Path(where).is_relative_to(fresh_site), where  # the wheel, not the checkout

    out = _run([fresh / "bin" / "flopsmeter", "demo", "--out", "demo"], cwd=empty, env=env, timeout=900)
    assert "demo checks:" in out and ", 0 failed." in out, out[-3000:]
    assert "each record copy is saved under its own job's name" in out
    assert "the tiny fine-tuning is classified on its metered FLOPs" in out
    assert len(list((empty / "demo" / "records").glob("*.json"))) == 8  # one per demo job
