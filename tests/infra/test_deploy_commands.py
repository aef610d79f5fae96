"""How the stack is deployed: the project's own environment (issue 12.4), an approval for widening IAM changes
by default (12.10), and the CDK's current recommended feature flags (12.11)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tarfile
from pathlib import Path

import aws_cdk
import pytest

from infra.assets import REPO_ROOT
from infra.config import cdk_json_context

pytestmark = pytest.mark.infra

VENV_PYTHON = ".venv/bin/python"


def _make_dry_run(*args: str) -> list[str]:
    """The commands ``make -n`` would run (nothing is executed)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "MAKEFLAGS": ""},
    )
    return [line for line in result.stdout.splitlines() if "aws-cdk@2" in line]


def test_the_cdk_cli_runs_the_app_with_the_project_environment() -> None:
    app = shlex.split(json.loads((REPO_ROOT / "cdk.json").read_text())["app"])
    assert app == [VENV_PYTHON, "app.py"]
    assert (REPO_ROOT / VENV_PYTHON).exists(), "make install/demo creates it"


@pytest.mark.parametrize("target", ["diff", "deploy", "destroy"])
def test_make_targets_run_the_app_with_the_project_environment(target: str) -> None:
    (command,) = _make_dry_run(target)
    words = shlex.split(command)
    assert words[words.index("--app") + 1] == f"{VENV_PYTHON} app.py"
    assert words[words.index("aws-cdk@2") + 1] == target


@pytest.mark.parametrize("target", ["deploy", "destroy"])
def test_make_deploy_and_destroy_take_every_stack_of_the_app(target: str) -> None:
    """Organization mode has two stacks (the compliance stack, then its StackSet's): the CLI refuses to pick one."""
    (command,) = _make_dry_run(target)
    assert "--all" in shlex.split(command)


def test_make_deploy_asks_before_widening_iam_unless_told_not_to() -> None:
    (default,) = _make_dry_run("deploy")
    assert "--require-approval broadening" in default
    (overridden,) = _make_dry_run("deploy", "APPROVAL=never")
    assert "--require-approval never" in overridden


def _recommended_flags() -> dict[str, object]:
    """recommended-feature-flags.json of the installed aws-cdk-lib (what `cdk init` writes into cdk.json)."""
    bundle = next((Path(aws_cdk.__file__).parent / "_jsii").glob("aws-cdk-lib@*.jsii.tgz"))
    with tarfile.open(bundle) as archive:
        member = archive.extractfile("package/recommended-feature-flags.json")
        assert member is not None
        flags: dict[str, object] = json.load(member)
    return flags


def test_cdk_json_adopts_exactly_the_recommended_feature_flags() -> None:
    context = cdk_json_context()
    flags = {k: v for k, v in context.items() if k.startswith("@aws-cdk")}
    assert "@aws-cdk/aws-sqs:dlqEncryption" not in flags  # no such flag: it did nothing
    assert flags == _recommended_flags()
