"""MeterOptions: one frozen dataclass shared by FlopsMeter and FlopsMeterCallback."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest

from flopsmeter.errors import FlopsMeterError
from flopsmeter.training.options import MeterOptions


def test_keywords_override_an_options_object_and_leave_it_untouched() -> None:
    base = MeterOptions(stop_at="threshold", measure_steps=2)
    merged = MeterOptions.of(base, {"emit_every_s": 5})
    assert (merged.stop_at, merged.measure_steps, merged.emit_every_s) == ("threshold", 2, 5)
    assert base.emit_every_s == 60.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.stop_at = None  # type: ignore[misc]


def test_an_unknown_keyword_names_the_known_ones() -> None:
    with pytest.raises(TypeError, match="stop_att.*emit_every_s"):
        MeterOptions.of(None, {"stop_att": "threshold"})


@pytest.mark.parametrize(
    "bad",
    [{"stop_at": "aproaching"}, {"policy": "no-such-policy"}, {"emit_every_s": float("nan")},
     {"approaching_fraction": 0}, {"measure_steps": -1}],
)  # fmt: skip
def test_bad_values_fail_when_built(bad) -> None:
    with pytest.raises((ValueError, FlopsMeterError)):
        MeterOptions(**bad)


def test_exported_is_plain_json_and_rebuilds_the_options(tmp_path) -> None:
    options = MeterOptions(stdout=io.StringIO(), output_dir=tmp_path, stop_at="approaching")
    exported = json.loads(json.dumps(options.exported()))
    assert exported["stdout"] is True and exported["output_dir"] == str(tmp_path)
    again = MeterOptions(**exported)
    assert again.stop_at == "approaching" and again.output_dir == str(tmp_path)
