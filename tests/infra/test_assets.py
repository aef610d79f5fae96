"""The Lambda asset: our source only, without what Lambda never imports."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.assets import REPO_ROOT, stage_lambda_asset

pytestmark = pytest.mark.infra


def test_asset_holds_the_handlers_and_the_library_but_not_training_local_tests_or_caches(tmp_path: Path) -> None:
    dest = stage_lambda_asset(tmp_path / "asset")
    files = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert "flopsmeter/audit/record.py" in files and "flopsmeter/domain/thresholds.py" in files
    assert "lambdas/classifier/handler.py" in files and "flopsmeter/functions/settings.py" in files
    assert not any(f.startswith(("flopsmeter/training/", "flopsmeter/local/")) for f in files)
    assert not any("__pycache__" in f or f.endswith(".pyc") or "/tests/" in f for f in files)
    # Package data the code reads at run time travels too (JSON catalogs and the like).
    source_json = {
        p.relative_to(REPO_ROOT).as_posix()
        for p in (REPO_ROOT / "flopsmeter").rglob("*.json")
        if p.relative_to(REPO_ROOT / "flopsmeter").parts[0] not in ("training", "local")
    }
    assert source_json <= files


def test_restaging_replaces_stale_files(tmp_path: Path) -> None:
    dest = tmp_path / "asset"
    stage_lambda_asset(dest)
    stale = dest / "lambdas" / "removed_function.py"
    stale.write_text("x = 1\n")
    stage_lambda_asset(dest)
    assert not stale.exists()


def test_staging_refuses_a_tree_without_the_packages(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a Python package"):
        stage_lambda_asset(tmp_path / "asset", source_root=tmp_path)
