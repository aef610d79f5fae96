"""Measured by default: the first steps and the first pass of each new shape under FlopCounterMode; the larger of
measured and closed form counted; a ratio outside 0.97-1.03 said on stdout and in the file with both figures."""

from __future__ import annotations

import io
import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from flopsmeter.domain.shape import ModelShape  # noqa: E402
from flopsmeter.training import probe  # noqa: E402
from flopsmeter.training.options import MeterOptions  # noqa: E402
from tests.support.meters import EXACT, ground_truth, quiet_meter  # noqa: E402
from tests.support.tiny_models import build, llama_config  # noqa: E402

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def model():
    return build(llama_config()).train()


def _steps(meter, model, lengths) -> float:
    """One optimizer step per length (as the callback drives the meter); FLOPs that ran, by the ground truth."""
    total = 0.0
    for seq in lengths:
        ids = torch.randint(0, 256, (2, seq))

        def step(ids=ids) -> None:
            meter.begin_step()
            model(input_ids=ids, labels=ids).loss.backward()
            meter.end_measure()

        total += ground_truth(step)
        meter.step()
    meter.close()
    return total


def test_the_default_options_measure_the_first_steps_and_each_new_shape(tmp_path, model) -> None:
    assert MeterOptions().measure_steps == 2 and MeterOptions().calibrate is True
    meter = quiet_meter(tmp_path, model).start().attach(model)
    ran = _steps(meter, model, [16, 16, 16, 16, 100, 100, 16])
    reasons = [w.reason for w in meter.counting.probe.windows]
    # the first two steps, then the first step whose rows fall in a new power-of-two bucket (100 > 64); no more
    assert reasons == ["first steps", "first steps", "new shape: update, attention span up to 127"]
    assert [w.step for w in meter.counting.probe.windows] == [0, 1, 4]
    assert all(w.ratio == pytest.approx(1.0, abs=EXACT) for w in meter.counting.probe.windows)
    assert meter.totals.flops == pytest.approx(ran, rel=EXACT)
    assert meter.totals.measured_excess_flops <= EXACT * ran


def test_new_shapes_beyond_the_budget_are_not_measured_and_counted(tmp_path, model, monkeypatch) -> None:
    monkeypatch.setattr(probe, "MAX_SHAPE_WINDOWS", 1)
    meter = quiet_meter(tmp_path, model, measure_steps=1).start().attach(model)
    _steps(meter, model, [16, 40, 100, 200])
    assert [w.reason.split(":")[0] for w in meter.counting.probe.windows] == ["first steps", "new shape"]
    doc = json.loads((tmp_path / "flops_meter.json").read_text())
    assert doc["measured"]["shapes_not_measured"] == 2


def test_a_closed_form_above_the_measurement_is_kept_and_said(tmp_path, model) -> None:
    big = ModelShape.from_hf_config({**model.config.to_dict(), "intermediate_size": 512})  # a wrong, high shape
    out = io.StringIO()
    meter = quiet_meter(tmp_path, model, shape=big, stdout=out).start().attach(model)
    ran = _steps(meter, model, [32, 32, 32])
    (first, second) = meter.counting.probe.windows
    assert first.ratio < 0.97 and first.outside
    assert meter.totals.flops > ran and meter.totals.measured_excess_flops == 0  # never lowered to the measurement
    assert "outside 0.97-1.03" in out.getvalue() and f"{first.closed_form_flops:.4e}" in out.getvalue()


def test_calibrate_false_records_and_warns_but_counts_the_closed_form(tmp_path, model) -> None:
    small = ModelShape.from_hf_config({**model.config.to_dict(), "intermediate_size": 32})
    meter = quiet_meter(tmp_path, model, shape=small, calibrate=False).start().attach(model)
    ran = _steps(meter, model, [32, 32, 32])
    assert meter.totals.measured_excess_flops == 0 and meter.totals.flops < 0.9 * ran
    doc = json.loads((tmp_path / "flops_meter.json").read_text())
    assert doc["measured"]["counted_beyond_closed_form"] is False
    assert any("calibrate=False: the closed form is counted" in w for w in doc["warnings"])


def test_a_measurement_that_cannot_start_leaves_the_closed_form_counting(tmp_path, model, monkeypatch) -> None:
    def broken(**kwargs):
        raise RuntimeError("no dispatch modes here")

    monkeypatch.setattr(probe, "flop_counter", broken)
    meter = quiet_meter(tmp_path, model).start().attach(model)
    ran = _steps(meter, model, [32, 32])
    assert meter.counting.probe.failed == "RuntimeError: no dispatch modes here" and not meter.counting.probe.enabled
    assert meter.totals.flops == pytest.approx(ran, rel=EXACT)
    doc = json.loads((tmp_path / "flops_meter.json").read_text())
    assert doc["measured"]["failed"] == "RuntimeError: no dispatch modes here"


def test_a_plain_loop_without_begin_step_is_measured_from_its_first_pass(tmp_path, model) -> None:
    meter = quiet_meter(tmp_path, model).start().attach(model)
    for _ in range(3):
        ids = torch.randint(0, 256, (2, 24))
        model(input_ids=ids, labels=ids).loss.backward()
        meter.step()
    meter.close()
    assert [w.reason for w in meter.counting.probe.windows] == ["first steps", "first steps"]
    assert all(w.ratio == pytest.approx(1.0, abs=EXACT) for w in meter.counting.probe.windows)
