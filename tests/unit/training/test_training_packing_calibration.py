"""Packed rows (document boundaries from position_ids), measured mode's extra formulas and calibration."""

from __future__ import annotations

import io
import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from flopsmeter.domain.shape import ModelShape  # noqa: E402
from flopsmeter.training.flop_formulas import flop_counter, grouped_mm_flop  # noqa: E402
from tests.support.meters import EXACT, quiet_meter  # noqa: E402
from tests.support.tiny_models import build, llama_config  # noqa: E402

pytestmark = pytest.mark.torch
DOCS = (5, 11, 16)  # three documents packed into one row of 32


def _packed_step(model) -> None:
    positions = torch.cat([torch.arange(n) for n in DOCS]).unsqueeze(0)
    ids = torch.randint(0, 256, positions.shape)
    model(input_ids=ids, position_ids=positions, labels=ids).loss.backward()


def test_packed_documents_are_found_from_position_ids_and_the_overcount_is_reported(tmp_path) -> None:
    model = build(llama_config())
    meter = quiet_meter(tmp_path, model, meta_check=False).start().attach(model)
    _packed_step(model)
    meter.step()
    meter.close()
    doc = json.loads((tmp_path / "flops_meter.json").read_text())
    documents = sum(n * n for n in DOCS)
    assert meter.totals.document_positions == documents and meter.totals.token_positions == 32 * 32
    per_position = meter.profile.training.per_position
    assert doc["packing"]["attention_overcount_flops"] == pytest.approx(per_position * (32 * 32 - documents))
    assert doc["packing"]["varlen_attention"] is False  # eager attention computes the whole row: counted so


def test_with_a_variable_length_kernel_attention_is_counted_per_document(tmp_path) -> None:
    model = build(llama_config())
    eager = quiet_meter(tmp_path / "a", model, meta_check=False).start().attach(model)
    _packed_step(model)
    eager.step()
    eager.close()
    model.config._attn_implementation = "flash_attention_2"  # what the profile reads at start (no flash on CPU)
    varlen = quiet_meter(tmp_path / "b", model, meta_check=False).start().attach(model)
    model.config._attn_implementation = "eager"  # the step itself runs eager: only the counting is at issue
    _packed_step(model)
    varlen.step()
    varlen.close()
    assert varlen.profile.varlen_attention
    per_position = varlen.profile.training.per_position
    saved = per_position * (32 * 32 - sum(n * n for n in DOCS))
    assert varlen.totals.flops == pytest.approx(eager.totals.flops - saved, rel=EXACT)


def test_the_counter_sees_in_place_addmm_grouped_gemm_and_cpu_sdpa() -> None:
    a, b, acc = torch.randn(8, 16), torch.randn(16, 4), torch.zeros(8, 4)
    q = torch.randn(1, 2, 10, 8, requires_grad=True)
    with flop_counter() as counter:
        acc.addmm_(a, b)
        torch.nn.functional.scaled_dot_product_attention(q, q, q).sum().backward()
    counts = {str(k): v for k, v in counter.get_flop_counts()["Global"].items()}
    assert counts["aten.addmm_"] == 2 * 8 * 16 * 4
    assert counts["aten._scaled_dot_product_flash_attention_for_cpu"] == 2 * 2 * (2 * 10 * 10 * 8)
    assert counts["aten._scaled_dot_product_flash_attention_for_cpu_backward"] > 0
    assert grouped_mm_flop([12, 16], [4, 16, 32]) == 2 * 12 * 16 * 32  # tokens split over 4 experts
    assert grouped_mm_flop([16, 12], [12, 32]) == 2 * 16 * 12 * 32  # weight gradient


def test_measured_mode_sees_sdpa_attention_on_cpu(tmp_path) -> None:
    config = llama_config()
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    meter = quiet_meter(tmp_path, model, measure_steps=1, meta_check=False).start().attach(model)
    meter.begin_step()
    ids = torch.randint(0, 256, (2, 32))
    model(input_ids=ids, labels=ids).loss.backward()
    meter.step()
    meter.close()
    (window,) = meter.counting.probe.windows  # without the CPU SDPA formulas the measurement would be 0.9 of it
    assert window.ratio == pytest.approx(1.0, abs=EXACT)  # the kernel's QK^T recompute: in the closed form's recompute
    assert meter.totals.recompute_flops > 0 and window.recompute_flops == meter.totals.recompute_flops


def test_a_closed_form_below_the_measurement_is_raised_to_it_and_said(tmp_path) -> None:
    model = build(llama_config())
    small = ModelShape.from_hf_config({**model.config.to_dict(), "intermediate_size": 32})  # a wrong, low shape
    out = io.StringIO()
    meter = quiet_meter(tmp_path, model, shape=small, measure_steps=1, stdout=out).start().attach(model)
    for _ in range(2):
        meter.begin_step()
        ids = torch.randint(0, 256, (2, 32))
        model(input_ids=ids, labels=ids).loss.backward()
        meter.step()
    meter.close()
    (window,) = meter.counting.probe.windows
    ratio = window.ratio
    # the measured step counts what ran, the unmeasured one the closed form x the ratio: the larger, per pass
    assert ratio > 1.2 and meter.counting.probe.scale("train") == ratio
    unscaled = meter.profile.training.flops(128, 128 * 32)
    assert meter.totals.flops == pytest.approx(unscaled * ratio)
    assert meter.totals.measured_excess_flops == pytest.approx(unscaled * (ratio - 1))
    # and it is said, with both figures, on stdout and in the file
    warning = f"measured {window.measured_flops:.4e} FLOPs where the closed form counts {window.closed_form_flops:.4e}"
    assert warning in out.getvalue() and "flopsmeter [WARNING]" in out.getvalue()
    assert f"measured_flops={window.measured_flops:.6e}" in out.getvalue()  # the metric lines carry both figures
    assert f"measured_closed_form_flops={window.closed_form_flops:.6e}" in out.getvalue()
    doc = json.loads((tmp_path / "flops_meter.json").read_text())
    assert any(w.startswith(warning) for w in doc["warnings"])
    assert doc["measured"]["outside_tolerance"][0]["measured_flops"] == window.measured_flops
