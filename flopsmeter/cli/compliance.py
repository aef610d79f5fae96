"""CLI commands: ``classify``, ``estimate`` and ``gate`` (pre-flight compliance, no AWS needed).

``classify`` puts a FLOP count against every threshold policy. ``estimate`` computes a fine-tuning run's
training FLOPs from a model config (and, given an instance, the hardware ceiling) and classifies it.
``gate`` is ``estimate`` for CI: exit 0 to launch, 1 when any evaluated policy says the run would exceed its
threshold (the strictest reading; ``--primary-only`` narrows that to the primary policy, ``--strict`` widens it
to anything but ``below`` under any policy), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from flopsmeter.cli import beyond_closed_form as beyond
from flopsmeter.cli.main import UsageError
from flopsmeter.domain.classification import Classification, Outcome, classify
from flopsmeter.domain.errors import FlopsMeterError, InvalidModelSpec, UnknownPolicy
from flopsmeter.domain.flops import FORMULA_VERSION, FlopsPerToken, flops_per_token, trainable_params, training_flops
from flopsmeter.domain.hardware import hardware_ceiling
from flopsmeter.domain.methods import (
    METHODS,
    FineTuning,
    GradientCheckpointing,
    input_grads_in_every_layer,
    lora_targets_from,
)
from flopsmeter.domain.model_configs import bundled_config_names, config_for_model
from flopsmeter.domain.numbers import format_flops, parse_flops
from flopsmeter.domain.pretrain import PretrainCompute, resolve_pretrain_compute
from flopsmeter.domain.reference import aws_sample_flops, six_nd_flops
from flopsmeter.domain.shape import ModelShape
from flopsmeter.domain.thresholds import DEFAULT_APPROACHING_FRACTION, DEFAULT_PRIMARY_POLICY, POLICIES, get_policy

EXIT_PASS, EXIT_BLOCK = 0, 1
MAX_CONFIG_BYTES = 1_000_000


def register(sub: Any) -> None:
    """Add ``classify``, ``estimate`` and ``gate`` to the flopsmeter parser."""
    p = sub.add_parser("classify", help="classify a FLOP count against every threshold policy")
    p.add_argument("--flops", required=True, help="FLOPs of the modification, e.g. 2.5e22")
    _add_base_model_args(p)
    p.set_defaults(func=run_classify)

    for name, text in (
        ("estimate", "estimate a fine-tuning run's training FLOPs from a model config, and classify it"),
        ("gate", "pre-flight gate for CI: exit 1 if the run would exceed the threshold of any evaluated policy"),
    ):
        p = sub.add_parser(name, help=text)
        _add_estimate_args(p)
        _add_base_model_args(p)
        if name == "gate":
            mode = p.add_mutually_exclusive_group()
            mode.add_argument("--strict", action="store_true", help="block unless every policy says below")
            mode.add_argument(
                "--primary-only", action="store_true", help="block only when the primary policy says exceeds"
            )
            p.set_defaults(func=run_gate)
        else:
            p.set_defaults(func=run_estimate)


def _add_base_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pretrain-flops", help="base model's pretraining compute as written (PRETRAIN_FLOPS)")
    p.add_argument(
        "--base-model", help="base model id, looked up in the bundled catalog (e.g. meta-llama/Llama-3.1-8B)"
    )
    p.add_argument("--systemic-risk-base", action="store_true", help="the base model is a systemic-risk GPAI model")
    p.add_argument(
        "--pretrain-flops-override-reason",
        help="why a --pretrain-flops more than 30%% above the catalog's estimate is right (recorded)",
    )
    p.add_argument("--policy", default=DEFAULT_PRIMARY_POLICY, help=f"primary policy ({', '.join(POLICIES)})")
    p.add_argument("--approaching-fraction", type=float, default=DEFAULT_APPROACHING_FRACTION,
                   help="'approaching' from this fraction of the threshold (default 0.8)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _add_estimate_args(p: argparse.ArgumentParser) -> None:
    names = ", ".join(bundled_config_names())
    p.add_argument(
        "--config",
        required=True,
        help=f"path to a Hugging Face config.json, or a model id (catalog, Hugging Face, JumpStart or Bedrock id) "
        f"whose architecture is bundled ({names})",
    )
    p.add_argument("--seq-len", required=True, help="tokens per sequence (padding included)")
    p.add_argument("--tokens", required=True, help="tokens the run will process (e.g. 2e9)")
    p.add_argument("--method", choices=METHODS, default="full")
    p.add_argument("--lora-rank", type=int, default=16)
    p.add_argument("--lora-targets", default="q_proj,v_proj", help="comma-separated module names, or all-linear")
    p.add_argument("--trainable-layers", help="spectrum: layer indices, e.g. 0,1,28-31")
    p.add_argument(
        "--gradient-checkpointing",
        choices=[m.value for m in GradientCheckpointing],
        default=GradientCheckpointing.UNKNOWN.value,
        help="how the run checkpoints activations; unknown (default) assumes reentrant, the costlier case",
    )
    p.add_argument(
        "--text-only",
        action="store_true",
        help="multimodal config, run feeds text only: count the language model (the tower never runs)",
    )
    beyond.add_arguments(p)
    p.add_argument("--instance-type", help="SageMaker instance type for the hardware ceiling, e.g. ml.p5.48xlarge")
    p.add_argument("--instance-count", type=int, default=1)
    p.add_argument("--hours", type=float, help="planned training hours (for the hardware ceiling)")


# ---- commands ----------------------------------------------------------------------------------------------


def run_classify(args: argparse.Namespace) -> int:
    flops = _flops_arg(args.flops, "--flops")
    pretrain = _pretrain(args)
    result = _classify(flops, pretrain, args)
    if args.json:
        _print_json({"flops": flops, "pretrain": _pretrain_json(pretrain), **_classification_json(result)})
    else:
        _print_classification(f"Modification FLOPs {format_flops(flops)}", pretrain, result)
    return 0


def run_estimate(args: argparse.Namespace) -> int:
    report, result = _estimate(args)
    if args.json:
        _print_json(report)
    else:
        _print_estimate(report, result)
    return 0


def run_gate(args: argparse.Namespace) -> int:
    report, result = _estimate(args)
    primary = result.primary.outcome
    blocking = _blocking_policies(result, args)
    blocked = bool(blocking)
    mode = "strict" if args.strict else "primary-only" if args.primary_only else "any-policy"
    report["gate"] = {
        "decision": "block" if blocked else "pass",
        "mode": mode,
        "strict": args.strict,
        "blocking_policies": blocking,
        "exit_code": int(blocked),
    }
    if args.json:
        _print_json(report)
    else:
        _print_estimate(report, result)
    if not blocked and result.worst is not Outcome.BELOW:
        worst = ", ".join(f"{r.policy}: {r.outcome}" for r in result.results if r.outcome is not Outcome.BELOW)
        print(f"flopsmeter: warning: not every policy says below ({worst})", file=sys.stderr)
    verdict = "BLOCK" if blocked else "PASS"
    used = f"{format_flops(report['total_flops'])} of {format_flops(result.primary.threshold)}"
    because = f"; blocked by {', '.join(blocking)}" if blocked else ""
    print(
        f"flopsmeter gate: {verdict} ({result.primary_policy}: {primary}, {used}; mode {mode}{because})",
        file=sys.stderr,
    )
    return EXIT_BLOCK if blocked else EXIT_PASS


def _blocking_policies(result: Classification, args: argparse.Namespace) -> list[str]:
    """The policies whose outcome blocks the run in the chosen mode (the strictest reading by default)."""
    if args.strict:
        return [r.policy for r in result.results if r.outcome is not Outcome.BELOW]
    if args.primary_only:
        return [result.primary_policy] if result.primary.outcome is Outcome.EXCEEDS else []
    return [r.policy for r in result.results if r.outcome is Outcome.EXCEEDS]


# ---- the work ------------------------------------------------------------------------------------------------


def _estimate(args: argparse.Namespace) -> tuple[dict[str, Any], Classification]:
    config_name, config = _load_config(args.config)
    seq_len = _count_arg(args.seq_len, "--seq-len", minimum=1)
    tokens = _count_arg(args.tokens, "--tokens", minimum=0)
    images = _count_arg(args.images, "--images", minimum=0)
    try:
        shape = ModelShape.from_hf_config(config, text_only=args.text_only or images > 0)
    except InvalidModelSpec as err:  # outside the closed form: measured on meta, as the meter does
        return _finish(args, *beyond.on_meta(args, (config_name, config), (seq_len, tokens), _tuning, _count_arg, err))
    try:
        tuning = _tuning(args)
        fpt = flops_per_token(shape, seq_len, tuning)
        total = training_flops(shape, seq_len, tokens, tuning)
        n_trainable = trainable_params(shape, tuning)
    except FlopsMeterError as err:
        raise UsageError(str(err)) from err
    warnings = _estimate_warnings(args, shape, tuning, fpt)
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
            "gradient_checkpointing": args.gradient_checkpointing,
            "input_grads_in_every_layer": tuning.input_requires_grad,
        },
        "seq_len": seq_len,
        "tokens": tokens,
        "formula_version": FORMULA_VERSION,
        "flops_per_token": fpt.total,
        "flops_per_token_forward": fpt.forward,
        "flops_per_token_backward": fpt.backward,
        "total_flops": total,
        "breakdown": {name: value * tokens for name, value in fpt.components.items()},
        "recompute_flops": fpt.recompute * tokens,
        "comparison": {
            "six_nd": six_nd_flops(shape.active_params, tokens),
            "aws_sample": aws_sample_flops(shape.total_params, n_trainable, tokens),
        },
    }
    if images:
        total += beyond.add_images(args, config, images, tuning, (report, warnings), _count_arg)
    return _finish(args, report, total, warnings)


def _finish(args: argparse.Namespace, report: dict[str, Any], total: float,
            warnings: list[str]) -> tuple[dict[str, Any], Classification]:  # fmt: skip
    pretrain = _pretrain(args)  # what every estimate adds to its figure: base model, hardware ceiling, classification
    warnings = [*pretrain.warnings, *warnings]
    report["pretrain"] = _pretrain_json(pretrain)
    if args.instance_type:
        report["hardware_ceiling"] = _ceiling(args, pretrain)
        warnings.extend(report["hardware_ceiling"]["warnings"])
    elif args.hours is not None:
        raise UsageError("--hours needs --instance-type")
    result = _classify(total, pretrain, args, extra_warnings=warnings)
    report["classification"] = _classification_json(result)
    report["warnings"] = list(result.warnings)
    return report, result


def _ceiling(args: argparse.Namespace, pretrain: PretrainCompute) -> dict[str, Any]:
    if args.hours is None:
        raise UsageError("--instance-type needs --hours (planned training time)")
    if not math.isfinite(args.hours) or args.hours <= 0:
        raise UsageError(f"--hours must be a number > 0, got {args.hours!r}")
    try:
        ceiling = hardware_ceiling(args.instance_type, args.instance_count, args.hours * 3600.0)
    except ValueError as err:
        raise UsageError(str(err)) from err
    outcome = _classify(ceiling.flops, pretrain, args).primary
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


def _tuning(args: argparse.Namespace) -> FineTuning:
    layers: frozenset[int] = frozenset()
    if args.trainable_layers:
        layers = _layer_set(args.trainable_layers)
    elif args.method == "spectrum":
        raise UsageError("--method spectrum needs --trainable-layers")
    return FineTuning(
        method=args.method,
        lora_rank=args.lora_rank,
        lora_targets=lora_targets_from(args.lora_targets),
        trainable_layers=layers,
        input_requires_grad=args.method != "full" and input_grads_in_every_layer(args.gradient_checkpointing),
    )


def _estimate_warnings(
    args: argparse.Namespace, shape: ModelShape, tuning: FineTuning, fpt: FlopsPerToken
) -> list[str]:
    """What the estimate assumed that the user should know about."""
    warnings = []
    if fpt.per_forward_call:
        warnings.append("LoRA on MoE experts/router costs FLOPs per forward call; counted as one sequence per call")
    if tuning.input_requires_grad and args.gradient_checkpointing == GradientCheckpointing.UNKNOWN:
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


def _layer_set(text: str) -> frozenset[int]:
    layers: set[int] = set()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            if "-" in part:
                first, last = (int(x) for x in part.split("-", 1))
                if last < first or last - first > 10_000:
                    raise ValueError(part)
                layers.update(range(first, last + 1))
            else:
                layers.add(int(part))
        except ValueError:
            raise UsageError(f"--trainable-layers: {part!r} is not a layer index or range like 28-31") from None
    if not layers or min(layers) < 0:
        raise UsageError("--trainable-layers needs layer indices >= 0")
    return frozenset(layers)


def _load_config(arg: str) -> tuple[str, dict[str, Any]]:
    path = Path(arg)
    if path.is_file():
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise UsageError(f"{arg} is larger than {MAX_CONFIG_BYTES} bytes; is it a config.json?")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise UsageError(f"cannot read model config {arg}: {err}") from err
        if not isinstance(data, dict):
            raise UsageError(f"model config {arg} is not a JSON object")
        return str(path), data
    try:
        return config_for_model(arg)
    except InvalidModelSpec as err:
        raise UsageError(f"--config {arg!r} is not a file, and {err}") from err


def _pretrain(args: argparse.Namespace) -> PretrainCompute:
    try:
        get_policy(args.policy)
    except UnknownPolicy as err:
        raise UsageError(str(err)) from err
    if not 0 < args.approaching_fraction <= 1:
        raise UsageError(f"--approaching-fraction must be in (0, 1], got {args.approaching_fraction}")
    return resolve_pretrain_compute(
        argument_value=args.pretrain_flops,
        base_model_id=args.base_model,
        systemic_risk_base=args.systemic_risk_base,
        override_reason=args.pretrain_flops_override_reason,
    )


def _classify(
    flops: float, pretrain: PretrainCompute, args: argparse.Namespace, extra_warnings: list[str] | None = None
) -> Classification:
    return classify(
        flops,
        pretrain.flops,
        systemic_risk_base=pretrain.systemic_risk,
        primary_policy=args.policy,
        approaching_fraction=args.approaching_fraction,
        warnings=extra_warnings if extra_warnings is not None else pretrain.warnings,
    )


def _flops_arg(text: str, flag: str) -> float:
    parsed = parse_flops(text, field=flag)
    if parsed.value is None:
        try:
            if float(text.replace("_", "")) == 0:  # zero FLOPs is a valid modification size (unlike a pretrain figure)
                return 0.0
        except ValueError:
            pass
        raise UsageError(parsed.warning.replace("; treated as unknown", "") if parsed.warning else f"{flag} is empty")
    return parsed.value


def _count_arg(text: str, flag: str, *, minimum: int) -> int:
    value: float
    try:
        value = int(text.replace("_", "").strip())
    except ValueError:
        parsed = parse_flops(text, field=flag)
        if parsed.value is None or not parsed.value.is_integer():
            raise UsageError(f"{flag} must be a whole number >= {minimum}, got {text!r}") from None
        value = parsed.value
    if value < minimum:
        raise UsageError(f"{flag} must be a whole number >= {minimum}, got {text!r}")
    return int(value)


# ---- output --------------------------------------------------------------------------------------------------


def _pretrain_json(pretrain: PretrainCompute) -> dict[str, Any]:
    return {
        "flops": pretrain.flops,
        "source": str(pretrain.source),
        "basis": pretrain.basis,
        "base_model_id": pretrain.base_model_id,
        "systemic_risk": pretrain.systemic_risk,
        "raw": pretrain.raw,
        "catalog_match": None if pretrain.catalog_match is None else str(pretrain.catalog_match),
    }


def _classification_json(result: Classification) -> dict[str, Any]:
    return {
        "primary_policy": result.primary_policy,
        "classifications": [r.as_dict() for r in result.results],
        "warnings": list(result.warnings),
    }


def _print_json(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, indent=2, allow_nan=False))


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


_STYLE = {"below": "green", "approaching": "yellow", "exceeds": "bold red"}


def _classification_table(result: Classification) -> Any:
    from rich.table import Table

    table = Table(title="Classification", title_justify="left")
    for column in ("policy", "scenario", "threshold", "ratio", "outcome"):
        table.add_column(column, justify="right" if column in ("threshold", "ratio") else "left")
    for r in result.results:
        name = f"{r.policy} (primary)" if r.policy == result.primary_policy else r.policy
        style = _STYLE[str(r.outcome)]
        table.add_row(name, str(r.scenario), format_flops(r.threshold), f"{r.ratio:.3f}",
                      f"[{style}]{r.outcome}[/{style}]")  # fmt: skip
    return table


def _print_classification(heading: str, pretrain: PretrainCompute, result: Classification) -> None:
    console = _console()
    console.print(f"[bold]{heading}[/bold]")
    console.print(
        f"Base model pretraining compute: {format_flops(pretrain.flops)} ({pretrain.source}: {pretrain.basis})"
    )
    console.print(_classification_table(result))
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")


def _print_estimate(report: dict[str, Any], result: Classification) -> None:
    from rich.table import Table

    console = _console()
    model, tuning = report["model"], report["fine_tuning"]
    console.print(
        f"[bold]{model['config']}[/bold] ({model['model_type'] or 'unknown type'}, {model['total_params'] / 1e9:.2f}B "
        f"params, {model['active_params'] / 1e9:.2f}B active), {tuning['method']}, seq_len {report['seq_len']}, "
        f"{report['tokens']:,} tokens, formula {report['formula_version']}"
    )
    table = Table(title="Training FLOPs", title_justify="left")
    table.add_column("component")
    table.add_column("FLOPs", justify="right")
    for name, value in report["breakdown"].items():
        table.add_row(name, format_flops(value))
    table.add_row("[bold]total[/bold]", f"[bold]{format_flops(report['total_flops'])}[/bold]")
    table.add_row("per token", format_flops(report["flops_per_token"]))
    table.add_row("gradient-checkpointing recompute (not included)", format_flops(report["recompute_flops"]))
    table.add_row("6·N·D (comparison)", format_flops(report["comparison"]["six_nd"]))
    table.add_row("AWS sample (4·N_total + 2·N_trainable)·D", format_flops(report["comparison"]["aws_sample"]))
    console.print(table)
    ceiling = report.get("hardware_ceiling")
    if ceiling:
        console.print(
            f"Hardware ceiling: {ceiling['instance_count']} x {ceiling['instance_type']} "
            f"({ceiling['chips_per_instance']} x {ceiling['accelerator']}, {ceiling['precision']} peak) for "
            f"{ceiling['seconds'] / 3600:g} h = {format_flops(ceiling['flops'])} "
            f"(primary policy: {ceiling['primary_outcome']}, ratio {ceiling['ratio']:.3f})"
        )
    pretrain = report["pretrain"]
    console.print(f"Base model pretraining compute: {format_flops(pretrain['flops'])} ({pretrain['source']}: "
                  f"{pretrain['basis']})")  # fmt: skip
    console.print(_classification_table(result))
    for warning in report["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}")
