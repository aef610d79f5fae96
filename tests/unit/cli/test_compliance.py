"""`flopsmeter classify | estimate | gate` through main([...]): exit codes and JSON shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flopsmeter.cli.main import main
from flopsmeter.domain.flops import flops_per_token
from flopsmeter.domain.methods import FineTuning
from flopsmeter.domain.model_configs import load_bundled_config
from flopsmeter.domain.shape import ModelShape


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_classify_json_shape_and_worked_example(capsys) -> None:
    code, out, _ = run(capsys, "classify", "--flops", "4.6e23", "--pretrain-flops", "1.5e24", "--json")
    body = json.loads(out)
    assert code == 0
    assert body["primary_policy"] == "aws-30pct-2026"
    assert {"policy", "scenario", "threshold", "ratio", "outcome"} <= set(body["classifications"][0])
    primary = next(c for c in body["classifications"] if c["policy"] == "aws-30pct-2026")
    assert primary["threshold"] == pytest.approx(4.5e23)
    assert primary["outcome"] == "exceeds"
    assert body["warnings"] == []


def test_classify_bad_pretrain_flops_is_unknown_and_warned(capsys) -> None:
    code, out, _ = run(capsys, "classify", "--flops", "3e22", "--pretrain-flops", "1e400", "--base-model",
                       "llama-3-70b", "--json")  # fmt: skip
    body = json.loads(out)
    assert code == 0
    assert all(c["scenario"] == "default" for c in body["classifications"])
    assert any("treated as unknown" in w for w in body["warnings"])


def test_classify_table_output(capsys) -> None:
    code, out, _ = run(capsys, "classify", "--flops", "1e22", "--systemic-risk-base")
    assert code == 0 and "aws-30pct-2026 (primary)" in out and "3.30e+24" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["classify", "--flops", "lots"],
        ["classify", "--flops", "-1"],
        ["classify", "--flops", "1e22", "--policy", "nope"],
        ["classify", "--flops", "1e22", "--approaching-fraction", "0"],
        ["classify"],
        ["estimate", "--config", "no-such-model", "--seq-len", "8", "--tokens", "8"],
        ["estimate", "--config", "llama-3.1-8b", "--seq-len", "0", "--tokens", "8"],
        ["estimate", "--config", "llama-3.1-8b", "--seq-len", "8", "--tokens", "-5"],
        ["estimate", "--config", "llama-3.1-8b", "--seq-len", "8", "--tokens", "1.5"],
        ["estimate", "--config", "llama-3.1-8b", "--seq-len", "8", "--tokens", "8", "--method", "spectrum"],
        ["estimate", "--config", "llama-3.1-8b", "--seq-len", "8", "--tokens", "8", "--method", "lora",
         "--lora-targets", "qkv_proj"],
        ["estimate", "--config", "llama-3.1-8b", "--seq-len", "8", "--tokens", "8",
         "--instance-type", "ml.p5.48xlarge"],
        ["estimate", "--config", "llama-3.1-8b", "--seq-len", "8", "--tokens", "8", "--instance-type", "ml.p5.48xlarge",
         "--hours", "1", "--instance-count", "0"],
        ["gate", "--config", "llama-3.1-8b", "--seq-len", "8", "--tokens", "8", "--method", "dora"],
    ],
)  # fmt: skip
def test_usage_errors_exit_2_with_one_line(capsys, argv: list[str]) -> None:
    try:  # argparse itself exits (2) for a missing or invalid choice; our checks return 2
        code = main(argv)
    except SystemExit as stop:
        code = int(stop.code or 0)
    err = capsys.readouterr().err
    assert code == 2
    assert "flopsmeter: error:" in err and "Traceback" not in err


def test_estimate_json_matches_the_domain_and_includes_ceiling(capsys) -> None:
    code, out, _ = run(capsys, "estimate", "--config", "llama-3.1-8b", "--seq-len", "4096", "--tokens", "2e9",
                       "--method", "lora", "--lora-rank", "16", "--lora-targets", "q_proj,v_proj",
                       "--instance-type", "ml.p5.48xlarge", "--instance-count", "2", "--hours", "10",
                       "--base-model", "meta-llama/Llama-3.1-8B", "--gradient-checkpointing", "off",
                       "--json")  # fmt: skip
    body = json.loads(out)
    shape = ModelShape.from_hf_config(load_bundled_config("llama-3.1-8b"))
    expected = flops_per_token(shape, 4096, FineTuning(method="lora", lora_rank=16))
    assert code == 0
    assert body["flops_per_token"] == pytest.approx(expected.total)
    assert body["total_flops"] == pytest.approx(expected.total * 2e9)
    assert sum(body["breakdown"].values()) == pytest.approx(body["total_flops"])
    assert body["hardware_ceiling"]["flops"] == pytest.approx(2 * 8 * 36000 * 1978.9e12)
    assert body["pretrain"]["source"] == "catalog"
    assert body["classification"]["primary_policy"] == "aws-30pct-2026"
    assert body["comparison"]["six_nd"] == pytest.approx(6 * shape.total_params * 2e9)


def test_estimate_accepts_a_config_path(capsys, tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(load_bundled_config("mixtral-8x7b")))
    code, out, _ = run(capsys, "estimate", "--config", str(path), "--seq-len", "1024", "--tokens", "1_000_000",
                       "--json")  # fmt: skip
    body = json.loads(out)
    assert code == 0 and body["model"]["active_params"] < body["model"]["total_params"]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = run(capsys, "estimate", "--config", str(bad), "--seq-len", "8", "--tokens", "8")
    assert code == 2 and "cannot read" in err


def test_estimate_spectrum_and_table(capsys) -> None:
    code, out, _ = run(capsys, "estimate", "--config", "qwen2.5-7b", "--seq-len", "2048", "--tokens", "1e8",
                       "--method", "spectrum", "--trainable-layers", "0,24-27")  # fmt: skip
    assert code == 0 and "Training FLOPs" in out and "Classification" in out


GATE = ["gate", "--config", "llama-3-70b", "--seq-len", "8192", "--pretrain-flops", "1.5e24", "--json"]


def _gate_tokens(fraction: float) -> str:
    per_token = flops_per_token(ModelShape.from_hf_config(load_bundled_config("llama-3-70b")), 8192).total
    return str(int(fraction * 4.5e23 / per_token))


def test_gate_passes_when_every_policy_is_below(capsys) -> None:
    code, out, _ = run(capsys, *GATE, "--tokens", _gate_tokens(0.5))
    body = json.loads(out)
    assert code == 0 and body["gate"]["decision"] == "pass"
    assert all(c["outcome"] == "below" for c in body["classification"]["classifications"])


def test_gate_blocks_when_primary_exceeds(capsys) -> None:
    code, out, err = run(capsys, *GATE, "--tokens", _gate_tokens(1.01))
    assert code == 1 and json.loads(out)["gate"]["decision"] == "block" and "BLOCK" in err


def test_gate_approaching_passes_with_warning_and_blocks_when_strict(capsys) -> None:
    tokens = _gate_tokens(0.9)
    code, _, err = run(capsys, *GATE, "--tokens", tokens)
    assert code == 0 and "warning" in err
    code, _, _ = run(capsys, *GATE, "--tokens", tokens, "--strict")
    assert code == 1


# Known pretraining compute 6e22 (< 1e23): the AWS reading falls back to 3.3e22, the guideline's one third is 2e22.
# At 2.5e22 FLOPs the primary (AWS) says below while the guideline says exceeds; at 2.7e22 AWS says approaching.
SPLIT_GATE = ["gate", "--config", "llama-3-70b", "--seq-len", "8192", "--pretrain-flops", "6e22", "--json"]


def _split_tokens(flops: float) -> str:
    per_token = flops_per_token(ModelShape.from_hf_config(load_bundled_config("llama-3-70b")), 8192).total
    return str(int(flops / per_token))


# (FLOPs, gate flags, exit code, blocking policies)
GATE_EXIT_CODES = [
    (1e22, [], 0, []),  # below everywhere
    (2.5e22, [], 1, ["eu-guideline-2025-07"]),  # any policy exceeding blocks by default
    (2.5e22, ["--primary-only"], 0, []),  # the user opted for the primary reading alone
    (2.5e22, ["--strict"], 1, ["eu-guideline-2025-07"]),
    (2.8e22, ["--strict"], 1, ["aws-30pct-2026", "eu-guideline-2025-07"]),  # approaching + exceeds
    (1.8e22, [], 0, []),  # approaching under the guideline only: passes, with a warning
    (1.8e22, ["--strict"], 1, ["eu-guideline-2025-07"]),  # strict: anything but below fails
    (4e22, ["--primary-only"], 1, ["aws-30pct-2026"]),
]


@pytest.mark.parametrize(("flops", "flags", "code", "blocking"), GATE_EXIT_CODES)
def test_gate_follows_the_strictest_reading_unless_told_otherwise(capsys, flops, flags, code, blocking) -> None:
    exit_code, out, err = run(capsys, *SPLIT_GATE, "--tokens", _split_tokens(flops), *flags)
    gate = json.loads(out)["gate"]
    assert exit_code == code == gate["exit_code"]
    assert gate["blocking_policies"] == blocking
    assert gate["decision"] == ("block" if code else "pass")
    if code == 0 and any(c["outcome"] != "below" for c in json.loads(out)["classification"]["classifications"]):
        assert "warning: not every policy says below" in err


def test_gate_outcomes_of_the_split_case_are_what_the_table_assumes(capsys) -> None:
    _, out, _ = run(capsys, *SPLIT_GATE, "--tokens", _split_tokens(2.5e22))
    outcomes = {c["policy"]: c["outcome"] for c in json.loads(out)["classification"]["classifications"]}
    assert outcomes == {"aws-30pct-2026": "below", "eu-guideline-2025-07": "exceeds"}


def test_gate_strict_and_primary_only_cannot_be_combined(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main([*SPLIT_GATE, "--tokens", "1", "--strict", "--primary-only"])
    assert stop.value.code == 2


LORA = ["estimate", "--config", "llama-3.1-8b", "--seq-len", "2048", "--tokens", "1e6", "--method", "spectrum",
        "--trainable-layers", "28-31", "--json"]  # fmt: skip


def test_unstated_gradient_checkpointing_assumes_the_costlier_reentrant_case(capsys) -> None:
    shape = ModelShape.from_hf_config(load_bundled_config("llama-3.1-8b"))
    layers = frozenset(range(28, 32))
    _, out, _ = run(capsys, *LORA)
    body = json.loads(out)
    careful = flops_per_token(shape, 2048, FineTuning(method="spectrum", trainable_layers=layers,
                                                      input_requires_grad=True))  # fmt: skip
    naive = flops_per_token(shape, 2048, FineTuning(method="spectrum", trainable_layers=layers))
    assert body["flops_per_token"] == pytest.approx(careful.total) and careful.total > 1.2 * naive.total
    assert body["fine_tuning"]["input_grads_in_every_layer"] is True
    assert any("gradient checkpointing not stated" in w for w in body["warnings"])
    _, out, _ = run(capsys, *LORA, "--gradient-checkpointing", "reentrant")
    assert json.loads(out)["flops_per_token"] == pytest.approx(careful.total)
    _, out, _ = run(capsys, *LORA, "--gradient-checkpointing", "non-reentrant")
    assert json.loads(out)["flops_per_token"] == pytest.approx(naive.total)


def test_a_multimodal_config_is_refused_or_counted_text_only(capsys, tmp_path: Path) -> None:
    text = load_bundled_config("llama-3.1-8b")
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "llava", "text_config": text, "vision_config": {"hidden_size": 1024}}))
    code, _, err = run(capsys, "estimate", "--config", str(path), "--seq-len", "8", "--tokens", "8")
    assert code == 2 and "vision_config" in err and "--text-only" in err
    code, out, _ = run(capsys, "estimate", "--config", str(path), "--seq-len", "8", "--tokens", "8", "--text-only",
                       "--json")  # fmt: skip
    body = json.loads(out)
    assert code == 0 and body["model"]["ignored_towers"] == ["vision_config"]
    assert any("--text-only" in w for w in body["warnings"])


def test_pretrain_override_reason_and_catalog_match_reach_the_report(capsys) -> None:
    base = ["classify", "--flops", "1e24", "--base-model", "meta-textgeneration-llama-3-70b-instruct",
            "--pretrain-flops", "7.86e24", "--json"]  # fmt: skip
    _, out, _ = run(capsys, *base)
    body = json.loads(out)
    assert body["pretrain"]["flops"] == 1.5e24 and body["pretrain"]["catalog_match"] == "normalised"
    _, out, _ = run(capsys, *base, "--pretrain-flops-override-reason", "confirmed by Meta")
    body = json.loads(out)
    assert body["pretrain"]["flops"] == 7.86e24 and "confirmed by Meta" in body["pretrain"]["basis"]


@pytest.mark.parametrize(
    ("model_id", "bundled"),
    [("meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b"), ("meta-textgeneration-llama-3-2-1b", "llama-3.2-1b"),
     ("meta.llama3-1-70b-instruct-v1:0", "llama-3.1-70b")],
)  # fmt: skip
def test_estimate_accepts_catalog_jumpstart_and_bedrock_model_ids(capsys, model_id: str, bundled: str) -> None:
    code, out, _ = run(capsys, "estimate", "--config", model_id, "--seq-len", "2048", "--tokens", "1e6", "--json")
    body = json.loads(out)
    expected = flops_per_token(ModelShape.from_hf_config(load_bundled_config(bundled)), 2048).total
    assert code == 0
    assert body["model"]["config"] == bundled
    assert body["flops_per_token"] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("model_id", "says"),
    [("Qwen/Qwen3-8B", "no architecture is bundled"), ("acme/unheard-of-9b", "not a model in the bundled catalog")],
)
def test_estimate_model_id_without_architecture_is_a_clear_usage_error(capsys, model_id: str, says: str) -> None:
    code, _, err = run(capsys, "estimate", "--config", model_id, "--seq-len", "8", "--tokens", "8")
    assert code == 2 and says in err and "Traceback" not in err
