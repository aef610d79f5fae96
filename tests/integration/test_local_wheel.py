"""The built wheel as a user gets it: installed with real dependency resolution into a fresh virtualenv, run from an
empty folder outside the checkout.

One wheel is built per session (no build isolation: setuptools from this venv). Installs resolve from the package
index as pip is configured here (its cache and local wheel folders make a warm run quick), constrained to the
project's lock (requirements/dev.txt) so the versions are the tested ones. ``make test-wheel`` runs this module's
quick test; ``make test-slow`` also runs the full demo with training from ``[local,training]``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements" / "dev.txt"
TORCH_CPU = REPO / "requirements" / "torch-cpu.txt"
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
ESTIMATE = ["--config", "meta-llama/Llama-3.1-8B", "--seq-len", "4096", "--tokens", "2e9", "--method", "lora"]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "AWS_"))}


def _run(
    args: list[str | Path], *, cwd: Path, ok: tuple[int, ...] = (0,), timeout: float = 600, stderr: bool = False
) -> str:
    """stdout (with ``stderr``: stdout then stderr) of a command that must exit with one of ``ok``."""
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode in ok, f"{args}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + (done.stderr if stderr else "")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "flopsmeter", source / "flopsmeter", ignore=shutil.ignore_patterns("__pycache__"))
    wheelhouse = tmp_path_factory.mktemp("wheelhouse")
    # the base install has no dependencies: this builds this project's wheel only
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-index"]
    _run([*pip_wheel, "-w", wheelhouse, source], cwd=wheelhouse)
    (built,) = wheelhouse.glob("*.whl")
    return built


def _fresh_venv(where: Path) -> Path:
    _run([sys.executable, "-m", "venv", where / "venv"], cwd=where)
    return where / "venv" / "bin"


def test_the_wheel_is_this_projects_own_and_carries_its_license(wheel: Path) -> None:
    assert wheel.name == f"{PROJECT['name'].replace('-', '_')}-{PROJECT['version']}-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "flopsmeter/cli/main.py" in names and not any(n.startswith(("tests/", "infra/", "lambdas/")) for n in names)


def test_base_install_runs_the_preflight_and_local_runs_the_demo(wheel: Path, tmp_path: Path) -> None:
    bin_ = _fresh_venv(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    pip = [bin_ / "python", "-m", "pip", "install", "-q", "-c", LOCK]
    _run([*pip, wheel], cwd=empty)
    installed = json.loads(_run([bin_ / "python", "-m", "pip", "list", "--format", "json"], cwd=empty))
    # the base install adds no dependency (venv itself brings pip and, on 3.11, setuptools)
    assert {p["name"] for p in installed} - {"pip", "setuptools"} == {PROJECT["name"]}
    where = _run([bin_ / "python", "-c", "import flopsmeter; print(flopsmeter.__file__)"], cwd=empty).strip()
    assert Path(where).is_relative_to(tmp_path / "venv"), where  # the wheel, not the checkout

    flopsmeter = bin_ / "flopsmeter"
    assert "exceeds" in _run([flopsmeter, "classify", "--flops", "4.6e23", "--pretrain-flops", "1.5e24"], cwd=empty)
    estimate = json.loads(_run([flopsmeter, "estimate", *ESTIMATE, "--json"], cwd=empty))
    assert estimate["total_flops"] > 0
    assert "Training FLOPs" in _run([flopsmeter, "estimate", *ESTIMATE], cwd=empty)  # plain tables, no rich
    assert "flopsmeter gate: PASS" in _run([flopsmeter, "gate", *ESTIMATE], cwd=empty, stderr=True)
    missing = _run([flopsmeter, "query", "--dir", "."], cwd=empty, ok=(1,), stderr=True).strip()
    assert missing.count("\n") == 0 and f"pip install '{PROJECT['name']}[cli]'" in missing, missing

    _run([*pip, f"{wheel}[local]"], cwd=empty, timeout=900)
    out = _run([flopsmeter, "demo", "--skip-training", "--out", "demo"], cwd=empty, timeout=900, stderr=True)
    assert "demo checks:" in out and ", 0 failed." in out, out[-3000:]
    assert len(list((empty / "demo" / "records").glob("*.json"))) == 8  # one per demo job


def test_the_training_job_example_installs_the_wheel_shipped_beside_it(wheel: Path, tmp_path: Path) -> None:
    """As SageMaker does: ``pip install -r requirements.txt`` in the job's source directory."""
    source_dir = tmp_path / "code"
    (source_dir / "wheels").mkdir(parents=True)
    shutil.copy2(REPO / "examples" / "requirements.txt", source_dir)
    shutil.copy2(wheel, source_dir / "wheels")
    report = tmp_path / "report.json"
    # a fresh environment resolves the example's `./wheels/aiact_flopsmeter-…whl[training]` line with every dependency
    # (constrained to the lock and its CPU torch), as pip in the job would: the wheel, never the index's unrelated
    # `flopsmeter`. A dry run: the same resolution, without writing the ~50 packages (the slow test below installs them)
    pip = [_fresh_venv(tmp_path) / "python", "-m", "pip", "install", "-q", "--dry-run", "--report", report]
    _run([*pip, "-c", LOCK, "-c", TORCH_CPU, "-r", "requirements.txt"], cwd=source_dir, timeout=600)
    resolved = {item["metadata"]["name"]: item for item in json.loads(report.read_text())["install"]}
    ours = resolved[PROJECT["name"]]
    assert ours["download_info"]["url"].endswith(wheel.name) and ours["requested_extras"] == ["training"]
    assert "flopsmeter" not in resolved and resolved["torch"]["metadata"]["version"].endswith("+cpu")
    assert {"transformers", "peft", "boto3"} <= set(resolved)  # the [training] extra came with it


@pytest.mark.slow
@pytest.mark.torch
def test_local_and_training_run_the_whole_demo(wheel: Path, tmp_path: Path) -> None:
    bin_ = _fresh_venv(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    torch_pin = (REPO / "requirements" / "torch-cpu.txt").read_text().split("torch==", 1)[1].split()[0]
    # as the README's install does: the CPU torch build first, its dependencies resolved within the lock
    _run([bin_ / "python", "-m", "pip", "install", "-q", "-c", LOCK, f"torch=={torch_pin}"], cwd=empty, timeout=900)
    _run([bin_ / "python", "-m", "pip", "install", "-q", "-c", LOCK, f"{wheel}[local,training]"], cwd=empty,
         timeout=1200)  # fmt: skip
    out = _run([bin_ / "flopsmeter", "demo", "--out", "demo"], cwd=empty, timeout=900)
    assert "demo checks:" in out and ", 0 failed." in out, out[-3000:]
    assert "the tiny fine-tuning is classified on its metered FLOPs" in out
