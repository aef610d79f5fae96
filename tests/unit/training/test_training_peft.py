"""Every PEFT method exactly: plain LoRA and rsLoRA by the closed form, every other method (prompt tuning, prefix
tuning, P-tuning, IA3, DoRA, LoHa, ...) measured on meta as it runs, per token, per sequence and per call; a method
the meter does not know is measured, never counted as full fine-tuning."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

from flopsmeter.training import meta  # noqa: E402
from flopsmeter.training.meta import profile_model  # noqa: E402
from flopsmeter.training.tuning import peft_method  # noqa: E402
from tests.support.meters import EXACT, ground_truth  # noqa: E402
from tests.support.trainer_runs import peft_model  # noqa: E402

pytestmark = pytest.mark.torch
MEASURED = ("prompt_tuning", "prefix_tuning", "p_tuning", "ia3", "dora")


def _ran(model, rows: int, seq: int) -> float:
    ids = torch.randint(0, 200, (rows, seq), generator=torch.Generator().manual_seed(seq))
    return ground_truth(lambda: model(input_ids=ids, labels=ids).loss.backward())


def _counted(profile, rows: int, seq: int) -> float:
    tokens = rows * seq
    positions = tokens * seq
    return (profile.training.flops(tokens, positions) + profile.pass_extra(rows, backward=True)
            + profile.kernel_recompute.flops(tokens, positions))  # fmt: skip


@pytest.mark.parametrize("method", [*MEASURED, "rslora", "lora_modules_to_save"])
def test_each_peft_method_is_counted_as_it_runs(method: str) -> None:
    model = peft_model(method, attention="sdpa")().train()
    profile = profile_model(model)
    assert profile.peft_method == {"lora_modules_to_save": "lora"}.get(method, method)
    assert profile.source == ("meta" if method in MEASURED else "formula (meta cross-check agrees)")
    assert profile.tuning.method != "full" or method in ("prompt_tuning", "prefix_tuning", "p_tuning")
    for rows, seq in ((2, 24), (3, 70)):  # per-sequence costs (virtual tokens, prefixes) scale with rows, not tokens
        assert _counted(profile, rows, seq) == pytest.approx(_ran(model, rows, seq), rel=EXACT), (method, rows, seq)


def test_a_peft_method_the_meter_does_not_know_is_measured_not_counted_as_full() -> None:
    from tests.support.tiny_models import build
    from tests.support.trl_runs import tiny_config

    model = peft.get_peft_model(build(tiny_config()), peft.LoHaConfig(r=4, target_modules=["q_proj", "v_proj"]))
    assert peft_method(model).name == "loha" and not peft_method(model).closed_form
    profile = profile_model(model.train())
    assert profile.source == "meta" and "PEFT method loha" in profile.warnings[0]
    assert _counted(profile, 2, 24) == pytest.approx(_ran(model, 2, 24), rel=EXACT)


def test_a_peft_method_that_cannot_be_measured_gets_the_closest_closed_form_and_says_so(monkeypatch) -> None:
    monkeypatch.setattr(meta, "why_not_on_meta", lambda model: "4-bit parameters")
    profile = profile_model(peft_model("dora")().train())
    assert profile.source == "formula (closest to a PEFT method)" and profile.tuning.method == "lora"
    assert any("cannot be measured on the meta device (4-bit parameters)" in w for w in profile.warnings)
