"""make test-oldest installs the declared floors: each package of the meter's stack has one, read from pyproject."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import oldest_pins


def test_the_pins_are_the_declared_floors() -> None:
    assert oldest_pins.pins() == ["transformers==5.0", "peft==0.18", "trl==1.16", "datasets==4.7"]


def test_a_package_without_a_floor_is_refused(tmp_path: Path) -> None:
    text = oldest_pins.PYPROJECT.read_text(encoding="utf-8").replace('"peft>=0.18"', '"peft"')
    (tmp_path / "pyproject.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="no '>=' floor declared in pyproject.toml for peft"):
        oldest_pins.floors(tmp_path / "pyproject.toml")


def test_the_make_target_runs_every_meter_test_file() -> None:
    makefile = (oldest_pins.PYPROJECT.parent / "Makefile").read_text(encoding="utf-8")
    listed = makefile.split("METER_TESTS :=")[1].split("\n\n")[0]
    root = oldest_pins.PYPROJECT.parent
    meter_files = {str(p.relative_to(root)) for p in root.glob("tests/integration/test_training_*.py")}
    assert all(path in listed for path in meter_files) and "tests/unit/training" in listed
