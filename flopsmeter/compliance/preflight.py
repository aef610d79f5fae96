"""Pre-flight compliance, no AWS needed: classify a FLOP count, estimate a planned fine-tuning run, gate it in CI.

``classify_flops`` puts a FLOP count against every threshold policy. ``estimate`` computes a planned run's training
FLOPs from a model config (and, given instances and hours, the hardware ceiling) and classifies it;
``estimate_managed`` does it for a managed customization job with the service's own estimate. ``gate`` is
``estimate`` for CI: the run is blocked when any evaluated policy says it would exceed its threshold (the strictest
reading; ``primary-only`` narrows that to the primary policy, ``strict`` widens it to anything but ``below`` under any
policy). Each returns the JSON document the CLI prints with ``--json`` and the classification its tables show.

Standard library only (the domain), so the base install runs it. A request that cannot run raises
``InvalidRequest`` with one line saying why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from flopsmeter.compliance import preflight_beyond as beyond
from flopsmeter.compliance import preflight_managed as managed
from flopsmeter.compliance.errors import InvalidRequest
from flopsmeter.compliance.obligations_view import preflight_obligations
from flopsmeter.compliance.preflight_managed import ManagedRun
from flopsmeter.domain.classification import Classification, Outcome, classify
from flopsmeter.domain.errors import InvalidModelSpec, UnknownPolicy
from flopsmeter.domain.flops import FORMULA_VERSION, FlopsPerToken, flops_per_token, trainable_params, training_flops
from flopsmeter.domain.hardware import hardware_ceiling
from flopsmeter.domain.methods import FineTuning, GradientCheckpointing
from flopsmeter.domain.model_configs import config_for_model
from flopsmeter.domain.pretrain import PretrainCompute, resolve_pretrain_compute
from flopsmeter.domain.reference import aws_sample_flops, six_nd_flops
from flopsmeter.domain.shape import ModelShape
from flopsmeter.domain.thresholds import DEFAULT_APPROACHING_FRACTION, DEFAULT_PRIMARY_POLICY, get_policy
from flopsmeter.domain.times import utcnow
from flopsmeter.errors import FlopsMeterError

MAX_CONFIG_BYTES = 1_000_000
GateMode = Literal["any-policy", "strict", "primary-only"]


@dataclass(frozen=True)
class BaseModel:
    """What is known of the base model's pretraining compute, as the user gave it."""

    pretrain_flops: str | None = None  # as written (PRETRAIN_FLOPS)
    model_id: str | None = None  # looked up in the bundled catalog
    systemic_risk: bool = False
    override_reason: str | None = None


@dataclass(frozen=True)
class PolicyChoice:
    primary: str = DEFAULT_PRIMARY_POLICY
    approaching_fraction: float = DEFAULT_APPROACHING_FRACTION
    established_outside_eu: bool = False  # the provider's establishment: Art. 54 (authorised representative)
    now: datetime | None = None  # the moment of the check (the Art. 52(1) clock of a pre-flight); None: the clock


@dataclass(frozen=True)
class Instances:
    """The planned hardware, for the ceiling: instance type, count and training hours."""

    instance_type: str
    count: int
    hours: float


@dataclass(frozen=True)
class PlannedRun:
    config: str  # a path to a config.json, or a model id whose architecture is bundled
    seq_len: int
    tokens: int
    tuning: FineTuning
    gradient_checkpointing: str = GradientCheckpointing.UNKNOWN.value
    text_only: bool = False
    instances: Instances | None = None
    images: int = 0  # a vision-language config: images the run feeds (the tower counted per image)
    patches_per_image: int | None = None  # None: from the config's image size
    decoder_len: int | None = None  # an encoder-decoder config measured on meta: decoder tokens per sequence


@dataclass(frozen=True)
class Outcomes:
    """What the CLI prints: the JSON document and the classification behind it."""

    report: dict[str, Any]
    classification: Classification
    pretrain: PretrainCompute


def classify_flops(flops: float, base: BaseModel, policy: PolicyChoice) -> Outcomes:
    pretrain = _pretrain(base, policy)
    result = _classify(flops, pretrain, policy)
    report = {"flops": flops, "pretrain": pretrain_json(pretrain), **classification_json(result)}
    report["obligations"] = _obligations(result, pretrain, flops, policy)
    return Outcomes(report, result, pretrain)


def _obligations(
    result: Classification, pretrain: PretrainCompute, flops: float, policy: PolicyChoice
) -> dict[str, Any]:
    """Issue 23: what an exceeding pre-flight figure triggers, the Art. 52(1) clock started at the check."""
    now = policy.now or utcnow()
    return preflight_obligations(result, pretrain, flops, now, established_outside_eu=policy.established_outside_eu)


def estimate(run: PlannedRun, base: BaseModel, policy: PolicyChoice) -> Outcomes:
    """The planned run's FLOPs, breakdown, comparisons, hardware ceiling and classification. A config outside the
    closed form (multi-head latent attention, encoder-decoder, ...) is measured on the meta device as the meter
    measures it; a vision-language config given ``images`` adds its tower per image."""
    config_name, config = load_config(run.config)
    try:
        shape = ModelShape.from_hf_config(config, text_only=run.text_only or run.images > 0)
    except InvalidModelSpec as err:
        measured = beyond.on_meta(_beyond(run), config_name, config, err)
        return _finish(run, base, policy, measured, measured.pop("warnings"))
    try:
        fpt = flops_per_token(shape, run.seq_len, run.tuning)
        total = training_flops(shape, run.seq_len, run.tokens, run.tuning)
        n_trainable = trainable_params(shape, run.tuning)
    except FlopsMeterError as err:
        raise InvalidRequest(str(err)) from err
    warnings = _estimate_warnings(run, shape, fpt)
    tuning = run.tuning
    report: dict[str, Any] = {
        "model": {
            "config": config_name,
            "model_type": shape.model_type,
            "total_params": shape.total_params,
            "active_params": shape.active_params,
            "trainable_params": n_trainable,
            "ignored_towers": list(shape.ignored_towers),
        },  # fmt: skip
        "fine_tuning": {
            "method": tuning.method,
            "lora_rank": tuning.lora_rank if tuning.is_lora else None,
            "lora_targets": sorted(tuning.lora_targets) if tuning.is_lora else None,
            "trainable_layers": sorted(tuning.trainable_layers) if tuning.method == "spectrum" else None,
            "gradient_checkpointing": run.gradient_checkpointing,
            "input_grads_in_every_layer": tuning.input_requires_grad,
        },
        "seq_len": run.seq_len,
        "tokens": run.tokens,
        "formula_version": FORMULA_VERSION,
        "flops_per_token": fpt.total,
        "flops_per_token_forward": fpt.forward,
        "flops_per_token_backward": fpt.backward,
        "total_flops": total,
        "breakdown": {name: value * run.tokens for name, value in fpt.components.items()},
        "recompute_flops": fpt.recompute * run.tokens,
        "comparison": {
            "six_nd": six_nd_flops(shape.active_params, run.tokens),
            "aws_sample": aws_sample_flops(shape.total_params, n_trainable, run.tokens),
        },
    }
    if run.images:
        beyond.add_images(_beyond(run), config, report, warnings)
    return _finish(run, base, policy, report, warnings)


def estimate_managed(run: ManagedRun, base: BaseModel, policy: PolicyChoice) -> Outcomes:
    """A planned managed customization job: the service's own estimate (``flopsmeter.domain.customization``), its
    upper end classified, the base model read from the job as the service reads it (issue 23 point 5)."""
    try:
        found = managed.managed_estimate(run)
    except FlopsMeterError as err:
        raise InvalidRequest(str(err)) from err
    report, warnings = managed.managed_report(found, run)
    return _finish(run, replace(base, model_id=found.base.model_id), policy, report, warnings)


def _beyond(run: PlannedRun) -> beyond.Beyond:
    return beyond.Beyond(run.seq_len, run.tokens, run.tuning, run.images, run.patches_per_image, run.decoder_len)


def _finish(
    run: PlannedRun | ManagedRun, base: BaseModel, policy: PolicyChoice, report: dict[str, Any], warnings: list[str]
) -> Outcomes:
    """What every estimate adds to its figure: the base model, the hardware ceiling and the classification."""
    pretrain = _pretrain(base, policy)
    warnings = [*pretrain.warnings, *warnings]
    report["pretrain"] = pretrain_json(pretrain)
    if run.instances is not None:
        report["hardware_ceiling"] = _ceiling(run.instances, pretrain, policy)
        warnings.extend(report["hardware_ceiling"]["warnings"])
    result = _classify(report["total_flops"], pretrain, policy, warnings=warnings)
    report["classification"] = classification_json(result)
    report["obligations"] = _obligations(result, pretrain, report["total_flops"], policy)
    report["warnings"] = list(result.warnings)
    return Outcomes(report, result, pretrain)


def gate(
    run: PlannedRun | ManagedRun, base: BaseModel, policy: PolicyChoice, mode: GateMode = "any-policy"
) -> Outcomes:
    """``estimate`` (``estimate_managed`` for a managed job) plus the decision (``report["gate"]``): block or pass,
    and which policies block."""
    outcomes = estimate_managed(run, base, policy) if isinstance(run, ManagedRun) else estimate(run, base, policy)
    blocking = blocking_policies(outcomes.classification, mode)
    outcomes.report["gate"] = {
        "decision": "block" if blocking else "pass",
        "mode": mode,
        "strict": mode == "strict",
        "blocking_policies": blocking,
        "exit_code": int(bool(blocking)),
    }
    return outcomes


def blocking_policies(result: Classification, mode: GateMode) -> list[str]:
    """The policies whose outcome blocks the run in ``mode`` (the strictest reading by default)."""
    if mode == "strict":
        return [r.policy for r in result.results if r.outcome is not Outcome.BELOW]
    if mode == "primary-only":
        return [result.primary_policy] if result.primary.outcome is Outcome.EXCEEDS else []
    return [r.policy for r in result.results if r.outcome is Outcome.EXCEEDS]


def load_config(arg: str) -> tuple[str, dict[str, Any]]:
    """A model config from a config.json file, or the bundled architecture of a model id."""
    path = Path(arg)
    if path.is_file():
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise InvalidRequest(f"{arg} is larger than {MAX_CONFIG_BYTES} bytes; is it a config.json?")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise InvalidRequest(f"cannot read model config {arg}: {err}") from err
        if not isinstance(data, dict):
            raise InvalidRequest(f"model config {arg} is not a JSON object")
        return str(path), data
    try:
        return config_for_model(arg)
    except InvalidModelSpec as err:
        raise InvalidRequest(f"--config {arg!r} is not a file, and {err}") from err


def _ceiling(instances: Instances, pretrain: PretrainCompute, policy: PolicyChoice) -> dict[str, Any]:
    try:
        ceiling = hardware_ceiling(instances.instance_type, instances.count, instances.hours * 3600.0)
    except ValueError as err:
        raise InvalidRequest(str(err)) from err
    outcome = _classify(ceiling.flops, pretrain, policy).primary
    return {
        "instance_type": ceiling.instance_type,
        "instance_count": ceiling.instance_count,
        "accelerator": ceiling.accelerator,
        "chips_per_instance": ceiling.chips_per_instance,
        "seconds": ceiling.seconds,
        "peak_flops_per_chip": ceiling.peak_flops_per_chip,
        "precision": ceiling.precision,
        "flops": ceiling.flops,
        "bf16_flops": ceiling.bf16_flops,
        "known_instance": ceiling.known_instance,
        "primary_outcome": str(outcome.outcome),
        "ratio": outcome.ratio,
        "warnings": list(ceiling.warnings),
    }


def _estimate_warnings(run: PlannedRun, shape: ModelShape, fpt: FlopsPerToken) -> list[str]:
    """What the estimate assumed that the user should know about."""
    warnings = []
    tuning = run.tuning
    if fpt.per_forward_call:
        warnings.append("LoRA on MoE experts/router costs FLOPs per forward call; counted as one sequence per call")
    if tuning.input_requires_grad and run.gradient_checkpointing == GradientCheckpointing.UNKNOWN:
        without = flops_per_token(shape, fpt.seq_len, replace(tuning, input_requires_grad=False)).total
        if fpt.total > without:
            warnings.append(
                f"gradient checkpointing not stated: assumed reentrant (input gradients in every layer), which adds "
                f"{fpt.total / without - 1:.0%} to the estimate; pass --gradient-checkpointing off or non-reentrant "
                "if the run does not use it"
            )
    if shape.ignored_towers:
        warnings.append(
            f"--text-only: the model's {', '.join(shape.ignored_towers)} is not counted; valid only if the run feeds "
            "no images or audio"
        )
    return warnings


def _pretrain(base: BaseModel, policy: PolicyChoice) -> PretrainCompute:
    try:
        get_policy(policy.primary)
    except UnknownPolicy as err:
        raise InvalidRequest(str(err)) from err
    if not 0 < policy.approaching_fraction <= 1:
        raise InvalidRequest(f"--approaching-fraction must be in (0, 1], got {policy.approaching_fraction}")
    return resolve_pretrain_compute(
        argument_value=base.pretrain_flops,
        base_model_id=base.model_id,
        systemic_risk_base=base.systemic_risk,
        override_reason=base.override_reason,
    )


def _classify(
    flops: float, pretrain: PretrainCompute, policy: PolicyChoice, warnings: list[str] | None = None
) -> Classification:
    return classify(
        flops,
        pretrain.flops,
        systemic_risk_base=pretrain.systemic_risk,
        primary_policy=policy.primary,
        approaching_fraction=policy.approaching_fraction,
        warnings=warnings if warnings is not None else pretrain.warnings,
    )


def pretrain_json(pretrain: PretrainCompute) -> dict[str, Any]:
    return {
        "flops": pretrain.flops,
        "source": str(pretrain.source),
        "basis": pretrain.basis,
        "base_model_id": pretrain.base_model_id,
        "systemic_risk": pretrain.systemic_risk,
        "raw": pretrain.raw,
        "catalog_match": None if pretrain.catalog_match is None else str(pretrain.catalog_match),
    }


def classification_json(result: Classification) -> dict[str, Any]:
    return {
        "primary_policy": result.primary_policy,
        "classifications": [r.as_dict() for r in result.results],
        "warnings": list(result.warnings),
    }
