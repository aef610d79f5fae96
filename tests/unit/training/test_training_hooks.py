"""Whatever module actually runs is counted: a backbone called directly, a head projected on its own, a wrapper call
that says nothing, a teacher's backbone; a run whose update passes the meter never saw is incomplete, not completed."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.support.meters import EXACT, ground_truth, quiet_meter  # noqa: E402
from tests.support.tiny_models import build, llama_config  # noqa: E402

pytestmark = pytest.mark.torch
IDS = torch.randint(0, 256, (2, 24), generator=torch.Generator().manual_seed(0))


@pytest.fixture()
def model():
    return build(llama_config()).train()


def _run(meter, step) -> float:
    """``step`` inside the ground truth; the meter's executed figure (counted + recompute) after one step."""
    measured = ground_truth(step)
    meter.step()
    meter.sync(emit=False)
    return measured


def _executed(meter) -> float:
    return meter.totals.flops + meter.totals.recompute_flops


def test_a_backbone_called_directly_is_counted_without_the_head(tmp_path, model) -> None:
    meter = quiet_meter(tmp_path, model, measure_steps=0).start().attach(model)
    measured = _run(meter, lambda: model.model(input_ids=IDS).last_hidden_state.sum().backward())
    assert _executed(meter) == pytest.approx(measured, rel=EXACT)
    assert meter.totals.tokens == IDS.numel()


def test_a_head_projected_on_its_own_is_counted_with_the_backbone(tmp_path, model) -> None:
    meter = quiet_meter(tmp_path, model, measure_steps=0).start().attach(model)

    def step() -> None:
        hidden = model.model(input_ids=IDS).last_hidden_state
        model.lm_head(hidden[:, -10:]).float().sum().backward()  # the head on the last 10 positions only

    measured = _run(meter, step)
    assert _executed(meter) == pytest.approx(measured, rel=EXACT)


def test_a_wrapper_call_that_says_nothing_leaves_the_pass_to_the_calls_inside(tmp_path, model) -> None:
    # Given TRL's _forward_redirection: the wrapper's forward is swapped for a function of the unwrapped model
    meter = quiet_meter(tmp_path, model, measure_steps=0).start().attach(model)

    def redirected(module, ids):
        return module.model(input_ids=ids).last_hidden_state

    def step() -> None:
        original = model.forward
        model.forward = redirected
        try:
            hidden = model(model, IDS)  # the wrapper's hooks see (module, ids): nothing they can read
        finally:
            model.forward = original
        hidden.sum().backward()

    measured = _run(meter, step)
    assert _executed(meter) == pytest.approx(measured, rel=EXACT)


def test_calls_inside_a_counted_pass_are_part_of_it(tmp_path, model) -> None:
    meter = quiet_meter(tmp_path, model, measure_steps=0).start().attach(model)
    measured = _run(meter, lambda: model(input_ids=IDS, labels=IDS).loss.backward())
    assert _executed(meter) == pytest.approx(measured, rel=EXACT)
    assert meter.totals.tokens == IDS.numel()  # the backbone and head inside the model's call: not again


def test_a_teachers_backbone_is_reference_work(tmp_path, model) -> None:
    teacher = build(llama_config(hidden=96, inter=192), seed=3).eval()
    meter = quiet_meter(tmp_path, model, measure_steps=0).start().attach(model).attach_auxiliary(teacher, "reference")

    def step() -> None:
        with torch.no_grad():
            teacher.model(input_ids=IDS)
        model(input_ids=IDS, labels=IDS).loss.backward()

    measured = _run(meter, step)
    assert _executed(meter) == pytest.approx(measured, rel=EXACT) and meter.totals.reference_flops > 0


def test_a_run_whose_updates_the_meter_never_saw_is_incomplete(tmp_path, model) -> None:
    # Given a loop that steps the meter but never gives it a batch nor attaches it, and trains another model
    meter = quiet_meter(tmp_path, model).start()
    for _ in range(3):
        meter.begin_step()
        model(input_ids=IDS, labels=IDS).loss.backward()
        meter.step()
    meter.close()
    doc = json.loads((tmp_path / "flops_meter.json").read_text())
    # Then the measured steps found work no pass accounts for, and the run is incomplete with both reasons
    assert doc["status"] == "completed" and doc["meter_incomplete"] is True and doc["method"] == "metered_incomplete"
    reasons = " ".join(doc["incomplete"]["reasons"])
    assert "no hooked pass accounts for" in reasons and "not measured either" in reasons
    assert doc["incomplete"]["missing_steps"] == 1  # the third step: neither seen nor measured
    assert doc["flops"] >= 3 * doc["measured"]["first"][0]["measured_flops"] * 0.999  # measured + estimated


def test_with_measured_mode_off_a_run_that_updated_nothing_is_incomplete(tmp_path, model) -> None:
    meter = quiet_meter(tmp_path, model, measure_steps=0).start()
    for _ in range(2):
        model(input_ids=IDS, labels=IDS).loss.backward()
        meter.step()
    meter.close()
    doc = json.loads((tmp_path / "flops_meter.json").read_text())
    assert doc["meter_incomplete"] is True and doc["breakdown"]["update"] == 0
    assert any("stepped 2 times but no update pass was counted" in r for r in doc["incomplete"]["reasons"])
    assert "measured mode is off (measure_steps=0): nothing checks the closed form" in doc["warnings"]
