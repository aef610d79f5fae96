"""Issue 23 point 5: one figure from pre-flight to record. ``gate`` / ``estimate --managed`` classify exactly the
figure the classifier service later records for the same managed customization job (same technique, LoRA rank and
targets, sequence length, token reading, upper end, base model), and reach the same outcome under every policy.
The record side runs the service's real record builder over fakes of DescribeTrainingJob / GetModelCustomizationJob."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from flopsmeter.cli.main import main
from flopsmeter.compliance import preflight
from flopsmeter.compliance.preflight_managed import ManagedRun
from flopsmeter.domain.flops import flops_per_token
from flopsmeter.domain.methods import FineTuning
from flopsmeter.domain.model_configs import load_bundled_config
from flopsmeter.domain.shape import ModelShape
from flopsmeter.service.bedrock import classify_bedrock_job
from flopsmeter.service.classifier import classify_and_record
from flopsmeter.service.dependencies import ClassifyRequest
from tests.support.fakes import World

HUB = "arn:aws:sagemaker:eu-west-1:aws:hub-content/SageMakerPublicHub/Model"
LLAMA_8B = "meta-textgeneration-llama-3-1-8b-instruct"

SERVERLESS_CASES = [
    # (hub model, CustomizationTechnique, Peft, SequenceLength, BillableTokenCount)
    (LLAMA_8B, "SFT", "LORA", "4K", 50_000_000),
    (LLAMA_8B, "DPO", None, "32K", 2_000_000_000),
    ("meta-textgeneration-llama-3-1-405b-instruct", "RLVR", "LORA", "128K", 100_000_000),
    ("huggingface-llm-qwen3-8b", None, None, None, 1_000_000_000),  # technique and length unstated
    (LLAMA_8B, "SFT", "LORA", "4K", None),  # no count: the bound
]


def _record_of_serverless(world: World, name: str, config: dict[str, Any], tokens: int | None) -> Any:
    job = world.jobs.add(name, instance_type="unknown", hours=1.0)
    del job["ResourceConfig"]
    job["ServerlessJobConfig"] = config
    if tokens is not None:
        job["BillableTokenCount"] = tokens
    world.trail.add(name)
    result = classify_and_record(ClassifyRequest(name, "evt-1"), world.deps, world.config)
    assert result.status == "recorded" and result.record is not None
    return result.record


def _same(record: Any, outcomes: preflight.Outcomes) -> None:
    assert outcomes.report["total_flops"] == record.flops.classified_flops
    assert outcomes.report["managed"]["estimate"] == record.customization.estimate.model_dump()
    assert outcomes.pretrain.flops == record.base_model.pretrain_flops
    gate = {r.policy: r.outcome.value for r in outcomes.classification.results}
    assert gate == {c.policy: c.outcome for c in record.classifications}


@pytest.mark.parametrize(("model", "technique", "peft", "seq", "tokens"), SERVERLESS_CASES)
def test_gate_classifies_the_serverless_records_figure(
    world: World, model: str, technique: str | None, peft: str | None, seq: str | None, tokens: int | None
) -> None:
    arn = f"{HUB}/{model}"
    config = {"BaseModelArn": arn, "JobType": "FineTuning", "CustomizationTechnique": technique, "Peft": peft,
              "SequenceLength": seq}  # fmt: skip
    record = _record_of_serverless(world, "planned-job", {k: v for k, v in config.items() if v is not None}, tokens)
    run = ManagedRun("sagemaker-serverless", arn, technique, peft, seq, tokens)
    outcomes = preflight.gate(run, preflight.BaseModel(), preflight.PolicyChoice())
    _same(record, outcomes)
    assert outcomes.report["gate"]["decision"] == ("block" if record.outcome == "exceeds" else "pass")


def test_the_old_gate_passed_what_the_record_flags(world: World) -> None:
    """Before issue 23: the gate's LoRA (r16 q,v, central figure) was below the record's (r64 all-linear, upper end)."""
    config = {"BaseModelArn": f"{HUB}/{LLAMA_8B}", "JobType": "FineTuning", "CustomizationTechnique": "SFT",
              "Peft": "LORA", "SequenceLength": "4K"}  # fmt: skip
    record = _record_of_serverless(world, "lora-job", config, 50_000_000)
    shape = ModelShape.from_hf_config(load_bundled_config("llama-3.1-8b"))
    old_gate = flops_per_token(shape, 4096, FineTuning(method="lora")).total * 50_000_000
    assert old_gate < record.flops.classified_flops  # what the managed pre-flight now closes


@pytest.mark.parametrize(("declared", "epochs"), [("300000000", 2), (None, None)])
def test_gate_classifies_the_bedrock_records_figure(world: World, declared: str | None, epochs: int | None) -> None:
    hyper = {"epochCount": str(epochs)} if epochs else {}
    job = world.bedrock.add("bedrock-job", hyper_parameters=hyper or {"epochCount": ""})
    if not epochs:
        job["hyperParameters"] = {}
    if declared:
        world.bedrock.tag_map[job["jobArn"]] = {"flopsmeter:declared-tokens": declared}
    result = classify_bedrock_job(ClassifyRequest("bedrock-job", "evt-b"), world.deps, world.config)
    assert result.record is not None
    run = ManagedRun("bedrock", job["baseModelArn"], "FINE_TUNING", tokens=int(declared) if declared else None,
                     epochs=epochs)  # fmt: skip
    _same(result.record, preflight.gate(run, preflight.BaseModel(), preflight.PolicyChoice()))


def test_a_declared_token_tag_reaches_the_serverless_record(world: World) -> None:
    config = {"BaseModelArn": f"{HUB}/{LLAMA_8B}", "JobType": "FineTuning", "CustomizationTechnique": "SFT"}
    job = world.jobs.add("tagged-job", instance_type="unknown", hours=1.0)
    del job["ResourceConfig"]
    job["ServerlessJobConfig"] = config
    world.jobs.tag_map[job["TrainingJobArn"]] = {"flopsmeter:declared-tokens": "4e8"}
    world.trail.add("tagged-job")
    record = classify_and_record(ClassifyRequest("tagged-job", "evt-1"), world.deps, world.config).record
    assert record is not None and record.customization.estimate.tokens == 400_000_000
    assert not record.customization.estimate.needs_declaration and record.flops.tokens == 400_000_000
    assert any("flopsmeter:declared-tokens" in w for w in record.warnings)


# ---- the CLI ---------------------------------------------------------------------------------------------------


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


MANAGED = ["--managed", "sagemaker-serverless", "--base-model", f"{HUB}/{LLAMA_8B}", "--technique", "dpo",
           "--seq-len", "32K", "--json"]  # fmt: skip


def test_cli_gate_managed_matches_the_record(capsys: pytest.CaptureFixture[str], world: World) -> None:
    code, out, err = _cli(capsys, "gate", *MANAGED, "--tokens", "2e9")
    config = {"BaseModelArn": f"{HUB}/{LLAMA_8B}", "JobType": "FineTuning", "CustomizationTechnique": "DPO",
              "SequenceLength": "32K"}  # fmt: skip
    record = _record_of_serverless(world, "cli-job", config, 2_000_000_000)
    body = json.loads(out)
    assert body["total_flops"] == record.flops.classified_flops
    assert code == (1 if record.outcome == "exceeds" else 0) and "flopsmeter gate:" in err


def test_cli_estimate_managed_blocks_on_the_bound_without_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, "gate", *MANAGED)
    body = json.loads(out)
    assert code == 1 and body["managed"]["estimate"]["needs_declaration"] is True
    code, out, _ = _cli(capsys, "estimate", *MANAGED[:-1])
    assert code == 0 and "as the record will classify them" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["gate", *MANAGED, "--lora-rank", "16"],  # the service chooses its LoRA
        ["gate", *MANAGED, "--config", "llama-3.1-8b"],
        ["gate", *MANAGED, "--epochs", "2"],  # Bedrock only
        ["gate", *MANAGED[:-3], "--seq-len", "2048K"],  # above the API's 1024K
        ["gate", *MANAGED[:4], "--technique", "FINE_TUNING"],  # a Bedrock technique on SageMaker
        ["gate", "--managed", "bedrock", "--base-model", "meta.llama3-1-8b-instruct-v1:0", "--peft", "LORA"],
        ["gate", "--managed", "bedrock"],  # no base model
        ["estimate", "--technique", "SFT", "--config", "llama-3.1-8b", "--seq-len", "8", "--tokens", "8"],
        ["estimate", "--seq-len", "8", "--tokens", "8"],  # neither --config nor --managed
        ["gate", *MANAGED, "--tokens", "0"],
    ],
)
def test_cli_managed_bad_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = _cli(capsys, *argv)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err


# ---- the docs' managed pre-flight commands run as written -------------------------------------------------------

REPO = Path(__file__).resolve().parents[3]
DOC_COMMAND = re.compile(r"(flopsmeter (?:estimate|gate) --managed[^`]*?)(?:`|\n```)", re.DOTALL)


def doc_commands() -> list[str]:
    found = []
    for doc in (REPO / "README.md", REPO / "docs" / "formulas.md", REPO / "docs" / "service.md"):
        for command in DOC_COMMAND.findall(doc.read_text(encoding="utf-8")):
            found.append(" ".join(command.replace("\\\n", " ").split()))
    return found


def test_the_docs_show_managed_pre_flights() -> None:
    assert len(doc_commands()) >= 4


@pytest.mark.parametrize("command", doc_commands())
def test_each_documented_managed_pre_flight_runs(capsys: pytest.CaptureFixture[str], command: str) -> None:
    argv = [word for word in shlex.split(command)[1:] if word != "--json"]
    code, out, err = _cli(capsys, *argv, "--json")
    assert code in (0, 1), err
    body = json.loads(out)
    assert body["total_flops"] == body["managed"]["modification_flops"]
