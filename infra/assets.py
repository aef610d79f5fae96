"""Stage the Lambda code asset: ``lambdas/`` + ``flopsmeter/`` into ``.build/lambda`` (no Docker, no pip).

Powertools and pydantic come from the Powertools layer and boto3 from the Lambda runtime, so the asset is
only our own source. Left out: tests, caches, and the parts of ``flopsmeter`` Lambda never imports
(``training/`` runs inside SageMaker jobs, ``local/`` is the embedded emulator). Copying afresh each
time keeps the asset hash a function of the source only.

Run ``python -m infra.assets [DEST]`` (``make build``); ``app.py`` stages before every synth.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ASSET_DIR = REPO_ROOT / ".build" / "lambda"
PACKAGES = ("lambdas", "flopsmeter")
# Subpackages Lambda never imports (kept out to keep the zip small and the cold start lean).
EXCLUDED_SUBPACKAGES = {"flopsmeter": ("training", "local")}
_IGNORE = shutil.ignore_patterns(
    "__pycache__",
    "*.pyc",
    "*.pyo",
    "tests",
    "test_*.py",
    "*_test.py",
    "conftest.py",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "*.egg-info",
    ".DS_Store",
)


def stage_lambda_asset(dest: Path = DEFAULT_ASSET_DIR, *, source_root: Path = REPO_ROOT) -> Path:
    """Copy the Lambda source tree into ``dest`` (replacing what was there) and return ``dest``."""
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for package in PACKAGES:
        src = source_root / package
        if not (src / "__init__.py").is_file():
            raise FileNotFoundError(f"cannot stage the Lambda asset: {src} is not a Python package")
        skipped = EXCLUDED_SUBPACKAGES.get(package, ())

        def ignore(directory: str, names: list[str], _src: Path = src, _skipped: tuple[str, ...] = skipped) -> set[str]:
            ignored = set(_IGNORE(directory, names))
            if Path(directory) == _src:
                ignored.update(n for n in names if n in _skipped)
            return ignored

        shutil.copytree(src, dest / package, ignore=ignore)
    return dest


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    dest = stage_lambda_asset(Path(args[0]) if args else DEFAULT_ASSET_DIR)
    files = sum(1 for p in dest.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    print(f"staged {files} files ({size / 1024:.0f} KiB) into {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
