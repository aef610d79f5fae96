"""Managed customization jobs (SageMaker AI serverless customization, Amazon Bedrock) estimated from their facts.

Neither service runs our meter or exposes accelerators, so these jobs are classified with the ``estimated``
method (``flopsmeter.domain.estimate``): base model (``customization_names``) x technique x tokens. This module
reads each service's fields into those three inputs and states every assumption:

* technique: SageMaker ``CustomizationTechnique`` (SFT | DPO | RLVR | RLAIF) and ``Peft`` (LORA; QLORA read as
  LoRA: a 4-bit base is dequantised for each matmul, the FLOPs are LoRA's); Bedrock ``customizationType``
  (FINE_TUNING | CONTINUED_PRE_TRAINING | DISTILLATION | REINFORCEMENT_FINE_TUNING). A technique not stated or not
  known is read as the costliest per token (RLAIF); no ``Peft`` is read as full fine-tuning (6N per token, not
  4N). Bedrock does not say whether it trains adapters: full is assumed.
* per-token cost: the base model's bundled architecture (``configs/*.json``) at the job's ``SequenceLength``
  ("32K" = 32 x 1024 tokens; at the model's longest context when not stated), else its catalog parameter count
  with the attention products at the job's ``SequenceLength`` (at the longest the API accepts, 1024K, when not
  stated), else a stand-in (a model whose size is not public) with a declaration asked for.
* tokens: SageMaker ``BillableTokenCount``. Bedrock exposes no token count (GetModelCustomizationJob: loss
  metrics only), so the documented training-data file-size limit bounds it, at most one token per byte, times
  ``epochCount`` (its documented maximum when not given); a declaration is asked for. A serverless job without a
  token count (or with 0: the field is filled "for eligible jobs" only) is bounded at the count that takes its
  training cost to the AI Act's 1e25 presumption. The job's ``flopsmeter:declared-tokens`` tag
  (``contract.TAG_DECLARED_TOKENS``) declares the count where AWS reports none, and replaces the bound; beside a
  reported count, the larger of the two is used.
* ``JobType: Evaluation`` jobs are evaluations: their compute is estimated and kept, and excluded from the
  modification's compute (guideline para. 118: diagnostic processes), so they never classify as a crossing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from flopsmeter.domain.customization_names import BaseModelRef, bedrock_base_model, sagemaker_base_model
from flopsmeter.domain.errors import InvalidModelSpec
from flopsmeter.domain.estimate import (
    Estimate,
    PerTokenCost,
    Technique,
    TokenCount,
    estimate_customization_flops,
    per_token_cost_from_architecture,
    per_token_cost_from_parameters,
)
from flopsmeter.domain.flops import flops_per_token
from flopsmeter.domain.methods import ALL_LINEAR, FineTuning
from flopsmeter.domain.model_configs import bundled_config_for, load_bundled_config
from flopsmeter.domain.shape import ModelShape
from flopsmeter.domain.thresholds import SYSTEMIC_RISK_TRAINING_FLOPS

SAGEMAKER_SERVERLESS = "sagemaker-serverless"
BEDROCK = "bedrock"

SAGEMAKER_TECHNIQUES = {"SFT": Technique.SFT, "DPO": Technique.DPO, "RLVR": Technique.RLVR,
                        "RLAIF": Technique.RLAIF}  # fmt: skip
BEDROCK_TECHNIQUES = {
    "FINE_TUNING": Technique.SFT,
    "CONTINUED_PRE_TRAINING": Technique.CONTINUED_PRETRAINING,
    "DISTILLATION": Technique.DISTILLATION,
    "REINFORCEMENT_FINE_TUNING": Technique.RLVR,  # graded by a Lambda function (rftConfig.graderConfig.lambdaGrader)
}
COSTLIEST_TECHNIQUE = Technique.RLAIF  # the most passes per token: the reading when the technique is not known
QLORA_NOTE = ("Peft QLORA: a 4-bit base dequantised for each matmul, so LoRA's FLOPs (the quantisation saves memory, "
              "not matmuls)")  # fmt: skip
# LoRA as the service runs it is not described: adapters on every linear layer at rank 64, input gradients
# through every layer (the costlier reading on each count).
ASSUMED_LORA = FineTuning(method="lora", lora_rank=64, lora_targets=frozenset({ALL_LINEAR}), input_requires_grad=True)
# A model whose size is not public (Amazon Nova, Titan, Anthropic Claude on Bedrock): the largest dense model in
# the catalog stands in; the record says so and asks for a declaration. Not a bound.
STAND_IN_PARAMETERS = 405e9

# Amazon Bedrock User Guide, "Model requirements for training and validation datasets": training dataset file
# size at most 1 GB for fine-tuning, 10 GB for continued pre-training. Read as GiB (the larger).
BEDROCK_SOURCE = "Amazon Bedrock User Guide, 'Model requirements for training and validation datasets'"
BEDROCK_DATASET_BYTES = {Technique.SFT: 2**30, Technique.CONTINUED_PRETRAINING: 10 * 2**30}
BEDROCK_DATASET_BYTES_OTHER = 10 * 2**30  # other types: the largest documented limit
# Amazon Bedrock User Guide, "Meta Llama 3.1 model customization hyperparameters": epochCount 1-10, default 5
# (an adjustable quota); the maximum is used when the job does not state it.
BEDROCK_MAX_EPOCHS = 10
# Reinforcement fine-tuning: each prompt yields trainingSamplePerPrompt rollouts of up to inferenceMaxTokens
# generated tokens. A JSON Lines record is at least 16 bytes, so a file of B bytes holds at most B / 16 prompts.
MIN_RECORD_BYTES = 16
RFT_STAND_IN = {"trainingSamplePerPrompt": 16, "inferenceMaxTokens": 16384}  # used when the job does not say
DECLARED_SOURCE = "the job's flopsmeter:declared-tokens tag, not verified by AWS"


# SageMaker API reference, ServerlessJobConfig.SequenceLength: a string matching \d+K, "1K" to "1024K". Without a
# bundled config (no longest context to read) an unstated length is read as the longest the API accepts; Bedrock
# states none, and is read the same way.
MAX_SEQUENCE_LENGTH = 1024 * 1024
_SEQUENCE_LENGTH = re.compile(r"^\s*(?P<n>\d{1,5})\s*[kK]\s*$")


class JobKind(StrEnum):
    FINE_TUNING = "fine_tuning"
    EVALUATION = "evaluation"


@dataclass(frozen=True)
class TechniqueReading:
    technique: Technique
    adapters: bool
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CustomizationEstimate:
    """A managed customization job's estimate, with what it was read from."""

    service: str
    kind: JobKind
    base: BaseModelRef
    reading: TechniqueReading
    seq_len: int | None
    estimate: Estimate

    @property
    def modification_flops(self) -> float:
        """FLOPs that count towards the modification: none for an evaluation (guideline para. 118)."""
        return 0.0 if self.kind is JobKind.EVALUATION else self.estimate.flops

    @property
    def needs_declaration(self) -> bool:
        """A bound rather than a count, or a private-hub base that may already be modified (issue 23)."""
        private = self.base.private_hub_account is not None
        return self.kind is JobKind.FINE_TUNING and (self.estimate.needs_declaration or private)

    def warnings(self) -> tuple[str, ...]:
        """What the record says: the base model, the readings, and the basis of every figure in the estimate."""
        notes = [*self.base.warnings(), *self.reading.notes, *self.estimate.assumptions]
        if self.kind is JobKind.EVALUATION:
            notes.append(f"evaluation job: its compute ({self.estimate.flops:.2e} FLOPs) is recorded and excluded "
                         "from the modification's compute (guideline para. 118: diagnostic processes)")  # fmt: skip
        elif self.needs_declaration:
            notes.append("estimate rests on a bound, not a count: a declaration of the job's tokens (and the base "
                         "model's size where it is not public) is needed")  # fmt: skip
        return tuple(notes)

    def as_dict(self) -> dict[str, object]:
        return {
            "service": self.service,
            "kind": self.kind.value,
            "base_model_reference": self.base.reference,
            "base_model_name": self.base.name,
            "base_model_version": self.base.version,
            "catalog_match": None if self.base.match is None else self.base.match.method.value,
            "adapters": self.reading.adapters,
            "seq_len": self.seq_len,
            "modification_flops": self.modification_flops,
            "estimate": self.estimate.as_dict(),
        }


# ---- technique ---------------------------------------------------------------------------------------------------


def sagemaker_technique(technique: object, peft: object) -> TechniqueReading:
    """``CustomizationTechnique`` + ``Peft`` of a serverless job -> technique and adapters, conservatively."""
    notes: list[str] = []
    name = str(technique).strip().upper() if technique else ""
    found = SAGEMAKER_TECHNIQUES.get(name)
    if found is None:
        found = COSTLIEST_TECHNIQUE
        what = f"CustomizationTechnique {name!r} is not known" if name else "CustomizationTechnique not stated"
        notes.append(f"{what}: read as {found.value.upper()}, the costliest per token (conservative)")
    peft_name = str(peft).strip().upper() if peft else ""
    adapters = peft_name in ("LORA", "QLORA")
    if peft_name == "QLORA":
        notes.append(QLORA_NOTE)
    elif peft and not adapters:
        notes.append(f"Peft {peft!r} is not known: read as full fine-tuning (conservative)")
    return TechniqueReading(found, adapters, tuple(notes))


def bedrock_technique(customization_type: object) -> TechniqueReading:
    """``customizationType`` of a Bedrock job -> technique; Bedrock does not say adapters or full: full."""
    name = str(customization_type).strip().upper() if customization_type else ""
    found = BEDROCK_TECHNIQUES.get(name)
    notes = ["Bedrock does not say whether it trains adapters or every weight: full fine-tuning assumed (6N per "
             "token, the costlier reading)"]  # fmt: skip
    if found is None:
        found = COSTLIEST_TECHNIQUE
        what = f"customizationType {name!r} is not known" if name else "customizationType not stated"
        notes.append(f"{what}: read as {found.value.upper()}, the costliest per token (conservative)")
    if found is Technique.DISTILLATION:
        notes.append("distillation: the teacher's inference is counted at the student's size; a larger teacher's "
                     "inference is not known to the service and is not added")  # fmt: skip
    return TechniqueReading(found, False, tuple(notes))


# ---- per-token cost ------------------------------------------------------------------------------------------------


def per_token_cost(base: BaseModelRef, *, adapters: bool, seq_len: int | None) -> tuple[PerTokenCost, int | None]:
    """Architecture at ``seq_len`` if bundled, else parameters, else a stand-in; and the sequence length used."""
    bundled = bundled_cost(base, ASSUMED_LORA if adapters else FineTuning(), seq_len)
    if bundled is not None:
        cost, used = bundled
        if adapters:
            cost = replace(cost, basis=f"{cost.basis}; LoRA assumed on every linear layer at rank 64")
        return cost, used
    used = seq_len or MAX_SEQUENCE_LENGTH
    return parameter_cost(base, adapters=adapters, seq_len=used), used


def bundled_cost(base: BaseModelRef, fine_tuning: FineTuning, seq_len: int | None) -> tuple[PerTokenCost, int] | None:
    """The bundled architecture's cost at ``seq_len`` (its longest context when None), or None when not bundled."""
    model = base.match.model if base.match else None
    config_name = bundled_config_for(model) if model else None
    if config_name is None:
        return None
    config = load_bundled_config(config_name)
    shape = ModelShape.from_hf_config(config)
    used = seq_len or _longest_context(config)
    fpt = flops_per_token(shape, used, fine_tuning)
    return per_token_cost_from_architecture(fpt.forward, fpt.total, config=config_name, seq_len=used), used


def parameter_cost(base: BaseModelRef, *, adapters: bool, seq_len: int = MAX_SEQUENCE_LENGTH) -> PerTokenCost:
    """From the catalog's (active) parameter count with the attention term at ``seq_len``, else the stand-in (size
    not public; ``known`` False)."""
    model = base.match.model if base.match else None
    parameters = (model.active_parameters or model.parameters) if model else None
    if model is not None and parameters:
        return per_token_cost_from_parameters(parameters, adapters=adapters, seq_len=seq_len,
                                              total_parameters=model.parameters)  # fmt: skip
    stand_in = per_token_cost_from_parameters(STAND_IN_PARAMETERS, adapters=adapters, seq_len=seq_len)
    basis = (
        f"stand-in: {STAND_IN_PARAMETERS:.3g} parameters (the largest dense catalog model); {base.name} size "
        f"unknown; {stand_in.basis}"
    )
    return replace(stand_in, basis=basis, known=False)


def _longest_context(config: Mapping[str, Any]) -> int:
    value = config.get("max_position_embeddings")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise InvalidModelSpec("bundled config has no max_position_embeddings")


# ---- tokens ------------------------------------------------------------------------------------------------------


def _count(value: object) -> int | None:
    """A non-negative whole count from an API number or string, else None."""
    if isinstance(value, bool):
        return None
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) and number >= 0 and number.is_integer() else None


def sequence_length(value: object) -> int | None:
    """``SequenceLength`` of a serverless job: the API's string "<n>K" (1K-1024K, K = 1024 tokens: the larger
    reading), or a plain count; None when absent or unreadable (the caller then uses the longest context)."""
    if isinstance(value, str):
        found = _SEQUENCE_LENGTH.match(value)
        if found:
            return int(found["n"]) * 1024 or None
    return _count(value) or None


def declared_tokens(value: object) -> tuple[int | None, str | None]:
    """The ``flopsmeter:declared-tokens`` tag: a whole count > 0, or None (with a warning when it is unusable)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    count = _count(value)
    if not count:
        shown = str(value)[:40]
        return None, f"declared token count {shown!r} is not a whole number > 0; ignored (the bound is kept)"
    return count, None


def sagemaker_tokens(billable: object, cost: PerTokenCost, declared: int | None = None) -> TokenCount:
    """``BillableTokenCount`` (the larger with a declared count), else the declared count, else the bound at which
    the job's training cost reaches the 1e25 presumption. A count of 0 reports nothing (filled for eligible jobs)."""
    count = _count(billable) or None
    if count is not None:
        if declared is not None and declared > count:
            return TokenCount(declared, f"declared ({DECLARED_SOURCE}), above BillableTokenCount {count:,}: the "
                              "larger is used", known=True)  # fmt: skip
        return TokenCount(count, "BillableTokenCount (DescribeTrainingJob)", known=True)
    if declared is not None:
        return TokenCount(declared, f"declared ({DECLARED_SOURCE}); DescribeTrainingJob reports no "
                          "BillableTokenCount", known=True)  # fmt: skip
    bound = math.ceil(SYSTEMIC_RISK_TRAINING_FLOPS / cost.training)
    why = "no BillableTokenCount" if _count(billable) is None else "BillableTokenCount 0 (reported for eligible jobs)"
    return TokenCount(bound, f"{why}; no documented service limit bounds it, so {bound:.3g} tokens, where the job's "
                      "training cost reaches 1e25 FLOPs (AI Act Art. 51(2))", known=False)  # fmt: skip


def bedrock_tokens(
    technique: Technique, hyper_parameters: Mapping[str, Any], rft: Mapping[str, Any], declared: int | None = None
) -> TokenCount:
    """Bedrock exposes no token count: the declared count, else the documented dataset size limit (<= 1 token per
    byte) x epochs."""
    if declared is not None:
        return TokenCount(declared, f"declared ({DECLARED_SOURCE}); Bedrock reports no token count", known=True)
    limit = BEDROCK_DATASET_BYTES.get(technique, BEDROCK_DATASET_BYTES_OTHER)
    epochs = _count(rft.get("epochCount", hyper_parameters.get("epochCount")))
    how = f"epochCount {epochs}" if epochs else f"epochCount not stated: its documented maximum {BEDROCK_MAX_EPOCHS}"
    epochs = epochs or BEDROCK_MAX_EPOCHS
    tokens = limit * epochs
    basis = f"training data at most {limit / 2**30:g} GiB ({BEDROCK_SOURCE}), at most 1 token per byte, x {how}"
    if technique is Technique.RLVR:
        samples = _count(rft.get("trainingSamplePerPrompt")) or RFT_STAND_IN["trainingSamplePerPrompt"]
        generated = _count(rft.get("inferenceMaxTokens")) or RFT_STAND_IN["inferenceMaxTokens"]
        tokens = epochs * samples * (limit + (limit // MIN_RECORD_BYTES) * generated)
        basis += (f"; each prompt (a record of >= {MIN_RECORD_BYTES} bytes) x {samples} rollouts of <= {generated} "
                  "generated tokens")  # fmt: skip
    return TokenCount(tokens, basis, known=False)


# ---- the two services ------------------------------------------------------------------------------------------


def estimate_serverless_job(
    config: Mapping[str, Any], billable_tokens: object, declared: object = None
) -> CustomizationEstimate:
    """A SageMaker AI serverless customization job from DescribeTrainingJob's ``ServerlessJobConfig`` and
    ``BillableTokenCount`` (and the job's declared token count, ``flopsmeter:declared-tokens``, if any). The
    pre-flight (``flopsmeter estimate|gate --managed``) calls this with the planned job's config."""
    base = sagemaker_base_model(str(config.get("BaseModelArn") or ""))
    evaluation = str(config.get("JobType") or "").strip().lower() == "evaluation"
    if evaluation:
        reading = TechniqueReading(Technique.EVALUATION, False)
    else:
        reading = sagemaker_technique(config.get("CustomizationTechnique"), config.get("Peft"))
    seq_len = sequence_length(config.get("SequenceLength"))
    cost, used = _cost(base, reading, seq_len)
    count, declared_warning = declared_tokens(declared)
    tokens = sagemaker_tokens(billable_tokens, cost, count)
    kind = JobKind.EVALUATION if evaluation else JobKind.FINE_TUNING
    estimate = estimate_customization_flops(cost, reading.technique, tokens)
    reading = _with_note(reading, _declared_note(tokens, declared_warning))
    return CustomizationEstimate(SAGEMAKER_SERVERLESS, kind, base, reading, used, estimate)


def estimate_bedrock_job(job: Mapping[str, Any], declared: object = None) -> CustomizationEstimate:
    """An Amazon Bedrock model customization job from GetModelCustomizationJob (or its event's detail), and the
    job's declared token count (``flopsmeter:declared-tokens``), if any."""
    base = bedrock_base_model(str(job.get("baseModelArn") or ""))
    reading = bedrock_technique(job.get("customizationType"))
    hyper = job.get("hyperParameters")
    hyper = hyper if isinstance(hyper, Mapping) else {}
    rft = _rft_hyper_parameters(job)
    cost, used = _cost(base, reading, None)
    count, declared_warning = declared_tokens(declared)
    tokens = bedrock_tokens(reading.technique, hyper, rft, count)
    estimate = estimate_customization_flops(cost, reading.technique, tokens)
    reading = _with_note(reading, _declared_note(tokens, declared_warning))
    return CustomizationEstimate(BEDROCK, JobKind.FINE_TUNING, base, reading, used, estimate)


def _declared_note(tokens: TokenCount, warning: str | None) -> str | None:
    """What the record says of a declared token count: unusable (ignored), or used and on whose word."""
    if warning is not None:
        return warning
    return f"token count {tokens.tokens:,}: {tokens.basis}" if DECLARED_SOURCE in tokens.basis else None


def _with_note(reading: TechniqueReading, note: str | None) -> TechniqueReading:
    return reading if note is None else replace(reading, notes=(*reading.notes, note))


def _cost(base: BaseModelRef, reading: TechniqueReading, seq_len: int | None) -> tuple[PerTokenCost, int | None]:
    return per_token_cost(base, adapters=reading.adapters, seq_len=seq_len)


def _rft_hyper_parameters(job: Mapping[str, Any]) -> Mapping[str, Any]:
    config = job.get("customizationConfig")
    rft = config.get("rftConfig") if isinstance(config, Mapping) else None
    hyper = rft.get("hyperParameters") if isinstance(rft, Mapping) else None
    return hyper if isinstance(hyper, Mapping) else {}
