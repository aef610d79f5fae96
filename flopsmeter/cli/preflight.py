"""CLI: ``classify``, ``estimate`` and ``gate`` (pre-flight compliance, no AWS needed).

The options become a request for ``flopsmeter.compliance.preflight``, which does the work; ``preflight_output``
prints the answer. ``gate`` exits 0 to launch, 1 when the run would exceed (see the use case for the modes), 2 on
usage errors. Standard library only: the base install runs these commands.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from flopsmeter.cli import preflight_output as output
from flopsmeter.compliance import preflight
from flopsmeter.compliance import preflight_managed as managed
from flopsmeter.compliance.errors import InvalidRequest
from flopsmeter.domain.classification import Outcome
from flopsmeter.domain.methods import (
    METHODS,
    FineTuning,
    GradientCheckpointing,
    input_grads_in_every_layer,
    lora_targets_from,
)
from flopsmeter.domain.model_configs import bundled_config_names
from flopsmeter.domain.numbers import format_flops, parse_flops
from flopsmeter.domain.thresholds import DEFAULT_APPROACHING_FRACTION, DEFAULT_PRIMARY_POLICY, POLICIES
from flopsmeter.errors import FlopsMeterError

EXIT_PASS, EXIT_BLOCK = 0, 1
DEFAULT_TUNING = FineTuning()  # its LoRA rank and targets are the defaults of --lora-rank and --lora-targets


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
    p.add_argument(
        "--established-outside-eu",
        action="store_true",
        help="the provider (you, once the run makes you one) is established outside the EU: a crossing then also "
        "lists Art. 54, an authorised representative (the service's established_outside_eu setting)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _add_estimate_args(p: argparse.ArgumentParser) -> None:
    names = ", ".join(bundled_config_names())
    p.add_argument(
        "--config",
        help=f"path to a Hugging Face config.json, or a model id (catalog, Hugging Face, JumpStart or Bedrock id) "
        f"whose architecture is bundled ({names}); required unless --managed",
    )
    p.add_argument("--seq-len", help="tokens per sequence (padding included); --managed: SequenceLength, e.g. 32K")
    p.add_argument("--tokens", help="tokens the run will process (e.g. 2e9); --managed: see --managed")
    p.add_argument("--method", choices=METHODS, help="full (default), lora, qlora or spectrum")
    p.add_argument("--lora-rank", type=int, help="LoRA rank (default 16)")
    p.add_argument("--lora-targets", help="comma-separated module names, or all-linear (default q_proj,v_proj)")
    p.add_argument("--trainable-layers", help="spectrum: layer indices, e.g. 0,1,28-31")
    p.add_argument(
        "--gradient-checkpointing",
        choices=[m.value for m in GradientCheckpointing],
        help="how the run checkpoints activations; unknown (default) assumes reentrant, the costlier case",
    )
    p.add_argument(
        "--text-only",
        action="store_true",
        help="multimodal config, run feeds text only: count the language model (the tower never runs)",
    )
    p.add_argument("--images", help="vision-language config: images the run feeds (its tower per image)")
    p.add_argument("--patches-per-image", help="patches per image (default: the config's image size, CLIP / SigLIP)")
    p.add_argument("--decoder-len", help="encoder-decoder config: decoder tokens per sequence (default: --seq-len)")
    p.add_argument("--instance-type", help="SageMaker instance type for the hardware ceiling, e.g. ml.p5.48xlarge")
    p.add_argument("--instance-count", type=int, default=1)
    p.add_argument("--hours", type=float, help="planned training hours (for the hardware ceiling)")
    _add_managed_args(p)


def _add_managed_args(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group(
        "managed customization (SageMaker AI serverless customization, Amazon Bedrock): the service's own estimate, "
        "the figure the record will classify; the base model is --base-model (hub content ARN, JumpStart or "
        "Bedrock id), --seq-len its SequenceLength, --tokens the BillableTokenCount expected (Bedrock: the count "
        "declared with the flopsmeter:declared-tokens tag); without --tokens, the bound the record would use"
    )
    group.add_argument("--managed", choices=managed.SERVICES, help="the service that will run the job")
    group.add_argument(
        "--technique",
        help="CustomizationTechnique (SFT, DPO, RLVR, RLAIF) or Bedrock customizationType (FINE_TUNING, "
        "CONTINUED_PRE_TRAINING, DISTILLATION, REINFORCEMENT_FINE_TUNING); not given: read as the service reads it",
    )
    group.add_argument("--peft", choices=managed.PEFT_CHOICES, help="serverless Peft; not given: full fine-tuning")
    group.add_argument("--epochs", help="Bedrock epochCount (not given: its documented maximum)")


# ---- commands ----------------------------------------------------------------------------------------------


def run_classify(args: argparse.Namespace) -> int:
    flops = _flops_arg(args.flops, "--flops")
    outcomes = preflight.classify_flops(flops, _base_model(args), _policy(args))
    if args.json:
        output.print_json(outcomes.report)
    else:
        output.print_classification(f"Modification FLOPs {format_flops(flops)}", outcomes.pretrain,
                                    outcomes.classification, outcomes.report.get("obligations"))  # fmt: skip
    return 0


def run_estimate(args: argparse.Namespace) -> int:
    run = _run(args)
    if isinstance(run, managed.ManagedRun):
        outcomes = preflight.estimate_managed(run, _base_model(args), _policy(args))
    else:
        outcomes = preflight.estimate(run, _base_model(args), _policy(args))
    _print_estimate(args, outcomes)
    return 0


def _print_estimate(args: argparse.Namespace, outcomes: preflight.Outcomes) -> None:
    if args.json:
        output.print_json(outcomes.report)
    elif "managed" in outcomes.report:
        output.print_managed(outcomes.report, outcomes.classification)
    else:
        output.print_estimate(outcomes.report, outcomes.classification)


def run_gate(args: argparse.Namespace) -> int:
    mode: preflight.GateMode = "strict" if args.strict else "primary-only" if args.primary_only else "any-policy"
    outcomes = preflight.gate(_run(args), _base_model(args), _policy(args), mode)
    report, result = outcomes.report, outcomes.classification
    _print_estimate(args, outcomes)
    blocking = report["gate"]["blocking_policies"]
    if not blocking and result.worst is not Outcome.BELOW:
        worst = ", ".join(f"{r.policy}: {r.outcome}" for r in result.results if r.outcome is not Outcome.BELOW)
        print(f"flopsmeter: warning: not every policy says below ({worst})", file=sys.stderr)
    verdict = "BLOCK" if blocking else "PASS"
    used = f"{format_flops(report['total_flops'])} of {format_flops(result.primary.threshold)}"
    because = f"; blocked by {', '.join(blocking)}" if blocking else ""
    print(
        f"flopsmeter gate: {verdict} ({result.primary_policy}: {result.primary.outcome}, {used}; mode {mode}{because})",
        file=sys.stderr,
    )
    return EXIT_BLOCK if blocking else EXIT_PASS


# ---- options -> request ----------------------------------------------------------------------------------------


def _base_model(args: argparse.Namespace) -> preflight.BaseModel:
    return preflight.BaseModel(
        args.pretrain_flops, args.base_model, args.systemic_risk_base, args.pretrain_flops_override_reason
    )


def _policy(args: argparse.Namespace) -> preflight.PolicyChoice:
    return preflight.PolicyChoice(
        args.policy, args.approaching_fraction, established_outside_eu=args.established_outside_eu
    )


# Options of a run whose model the user describes; a managed job's service chooses them itself.
NOT_MANAGED = ("config", "method", "lora_rank", "lora_targets", "trainable_layers", "gradient_checkpointing",
               "images", "patches_per_image", "decoder_len", "instance_type", "hours")  # fmt: skip


def _run(args: argparse.Namespace) -> preflight.PlannedRun | managed.ManagedRun:
    return _managed_run(args) if args.managed else _planned_run(args)


def _managed_run(args: argparse.Namespace) -> managed.ManagedRun:
    given = [name for name in NOT_MANAGED if getattr(args, name) is not None]
    given += ["text_only"] if args.text_only else []
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise InvalidRequest(f"{flags}: not for --managed; the service chooses them (it assumes full fine-tuning, or "
                             "LoRA rank 64 on every linear layer with --peft), and so does this estimate")  # fmt: skip
    return managed.ManagedRun(
        service=args.managed,
        base_model=args.base_model or "",
        technique=args.technique.strip().upper() if args.technique else None,
        peft=args.peft,
        sequence_length=args.seq_len,
        tokens=None if args.tokens is None else _count_arg(args.tokens, "--tokens", minimum=1),
        epochs=_optional_count(args.epochs, "--epochs"),
    )


def _planned_run(args: argparse.Namespace) -> preflight.PlannedRun:
    for name in ("technique", "peft", "epochs"):
        if getattr(args, name) is not None:
            raise InvalidRequest(f"--{name} describes a managed customization job: it needs --managed")
    for name in ("config", "seq_len", "tokens"):
        if getattr(args, name) is None:
            raise InvalidRequest(f"--{name.replace('_', '-')} is required (or --managed for a managed job)")
    seq_len = _count_arg(args.seq_len, "--seq-len", minimum=1)
    tokens = _count_arg(args.tokens, "--tokens", minimum=0)
    try:
        tuning = _tuning(args)
    except FlopsMeterError as err:
        raise InvalidRequest(str(err)) from err
    return preflight.PlannedRun(
        config=args.config,
        seq_len=seq_len,
        tokens=tokens,
        tuning=tuning,
        gradient_checkpointing=_checkpointing(args),
        text_only=args.text_only,
        instances=_instances(args),
        images=_count_arg(args.images or "0", "--images", minimum=0),
        patches_per_image=_optional_count(args.patches_per_image, "--patches-per-image"),
        decoder_len=_optional_count(args.decoder_len, "--decoder-len"),
    )


def _optional_count(text: str | None, flag: str) -> int | None:
    return None if text is None else _count_arg(text, flag, minimum=1)


def _instances(args: argparse.Namespace) -> preflight.Instances | None:
    if not args.instance_type:
        if args.hours is not None:
            raise InvalidRequest("--hours needs --instance-type")
        return None
    if args.hours is None:
        raise InvalidRequest("--instance-type needs --hours (planned training time)")
    if not math.isfinite(args.hours) or args.hours <= 0:
        raise InvalidRequest(f"--hours must be a number > 0, got {args.hours!r}")
    return preflight.Instances(args.instance_type, args.instance_count, args.hours)


def _tuning(args: argparse.Namespace) -> FineTuning:
    layers: frozenset[int] = frozenset()
    if args.trainable_layers:
        layers = _layer_set(args.trainable_layers)
    elif args.method == "spectrum":
        raise InvalidRequest("--method spectrum needs --trainable-layers")
    method = args.method or "full"
    return FineTuning(
        method=method,
        lora_rank=DEFAULT_TUNING.lora_rank if args.lora_rank is None else args.lora_rank,
        lora_targets=lora_targets_from(args.lora_targets or DEFAULT_TUNING.lora_targets),
        trainable_layers=layers,
        input_requires_grad=method != "full" and input_grads_in_every_layer(_checkpointing(args)),
    )


def _checkpointing(args: argparse.Namespace) -> str:
    return args.gradient_checkpointing or GradientCheckpointing.UNKNOWN.value


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
            raise InvalidRequest(f"--trainable-layers: {part!r} is not a layer index or range like 28-31") from None
    if not layers or min(layers) < 0:
        raise InvalidRequest("--trainable-layers needs layer indices >= 0")
    return frozenset(layers)


def _flops_arg(text: str, flag: str) -> float:
    parsed = parse_flops(text, field=flag)
    if parsed.value is None:
        try:
            if float(text.replace("_", "")) == 0:  # zero FLOPs is a valid modification size (unlike a pretrain figure)
                return 0.0
        except ValueError:
            pass
        raise InvalidRequest(
            parsed.warning.replace("; treated as unknown", "") if parsed.warning else f"{flag} is empty"
        )
    return parsed.value


def _count_arg(text: str, flag: str, *, minimum: int) -> int:
    value: float
    try:
        value = int(text.replace("_", "").strip())
    except ValueError:
        parsed = parse_flops(text, field=flag)
        if parsed.value is None or not parsed.value.is_integer():
            raise InvalidRequest(f"{flag} must be a whole number >= {minimum}, got {text!r}") from None
        value = parsed.value
    if value < minimum:
        raise InvalidRequest(f"{flag} must be a whole number >= {minimum}, got {text!r}")
    return int(value)
