"""Pre-flight for managed customization: the figure the record will classify, before the job runs.

A SageMaker AI serverless customization job or an Amazon Bedrock customization job is classified by the service
with ``flopsmeter.domain.customization`` (``estimate_serverless_job`` / ``estimate_bedrock_job``): the technique,
LoRA rank and targets, sequence length and token readings the service assumes, classified on the upper end. The
pre-flight builds the job as the service will describe it (``ServerlessJobConfig`` + ``BillableTokenCount``, or
GetModelCustomizationJob + the ``flopsmeter:declared-tokens`` tag) and calls the same function, so ``estimate`` and
``gate`` classify the same figure the record will (issue 23 point 5). Standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flopsmeter.compliance.errors import InvalidRequest
from flopsmeter.domain.customization import (
    BEDROCK,
    BEDROCK_TECHNIQUES,
    MAX_SEQUENCE_LENGTH,
    SAGEMAKER_SERVERLESS,
    SAGEMAKER_TECHNIQUES,
    CustomizationEstimate,
    estimate_bedrock_job,
    estimate_serverless_job,
    sequence_length,
)

SERVICES = (SAGEMAKER_SERVERLESS, BEDROCK)
PEFT_CHOICES = ("LORA", "QLORA")  # ServerlessJobConfig.Peft (QLORA read as LoRA's FLOPs)


@dataclass(frozen=True)
class ManagedRun:
    """A planned managed customization job, in the API's own words."""

    service: str  # sagemaker-serverless | bedrock
    base_model: str  # BaseModelArn / baseModelArn: a hub content ARN, JumpStart id, Bedrock model id or ARN
    technique: str | None = None  # CustomizationTechnique (SFT, DPO, RLVR, RLAIF) / customizationType
    peft: str | None = None  # ServerlessJobConfig.Peft
    sequence_length: str | None = None  # ServerlessJobConfig.SequenceLength ("32K")
    tokens: int | None = None  # serverless: the BillableTokenCount expected; Bedrock: the count declared by tag
    epochs: int | None = None  # Bedrock hyperParameters.epochCount

    @property
    def instances(self) -> None:
        """A managed job runs on instances it does not disclose: no hardware ceiling."""
        return None


def planned_job(run: ManagedRun) -> dict[str, Any]:
    """The job as the service will read it: ``ServerlessJobConfig``, or GetModelCustomizationJob's fields."""
    _check(run)
    if run.service == SAGEMAKER_SERVERLESS:
        config = {"BaseModelArn": run.base_model, "JobType": "FineTuning", "CustomizationTechnique": run.technique,
                  "Peft": run.peft, "SequenceLength": run.sequence_length}  # fmt: skip
        return {key: value for key, value in config.items() if value is not None}
    job: dict[str, Any] = {"baseModelArn": run.base_model, "customizationType": run.technique}
    if run.epochs is not None:
        job["hyperParameters"] = {"epochCount": str(run.epochs)}
    return {key: value for key, value in job.items() if value is not None}


def managed_estimate(run: ManagedRun) -> CustomizationEstimate:
    """The service's estimate of the planned job (the same function the classifier calls)."""
    job = planned_job(run)
    if run.service == SAGEMAKER_SERVERLESS:
        return estimate_serverless_job(job, run.tokens)
    return estimate_bedrock_job(job, run.tokens)


def managed_report(found: CustomizationEstimate, run: ManagedRun) -> tuple[dict[str, Any], list[str]]:
    """The pre-flight document (``managed`` is the record's ``customization`` block) and its warnings."""
    report: dict[str, Any] = {
        "managed": found.as_dict(),
        "planned_job": planned_job(run),
        "seq_len": found.seq_len,
        "tokens": found.estimate.tokens.tokens,
        "total_flops": found.modification_flops,
        "breakdown": dict(found.estimate.breakdown),
    }
    warnings = list(found.warnings())
    if run.tokens is None:
        warnings.append("--tokens not given: classified on the bound the record uses when the job reports no count")
    elif run.service == SAGEMAKER_SERVERLESS:
        warnings.append(
            "the record uses the job's BillableTokenCount; where AWS reports none (or 0), tag the job "
            f"flopsmeter:declared-tokens={run.tokens} or the record classifies a bound"
        )
    else:
        warnings.append(
            f"Bedrock reports no token count: tag the job flopsmeter:declared-tokens={run.tokens}, or the record "
            "classifies the documented bound"
        )
    return report, warnings


def _check(run: ManagedRun) -> None:
    """One clear line for a planned job the service would not describe so."""
    if run.service not in SERVICES:
        raise InvalidRequest(f"--managed must be one of {', '.join(SERVICES)}, got {run.service!r}")
    if not run.base_model.strip():
        raise InvalidRequest("--managed needs --base-model (the job's base model: hub ARN, JumpStart or Bedrock id)")
    serverless = run.service == SAGEMAKER_SERVERLESS
    known: Mapping[str, object] = SAGEMAKER_TECHNIQUES if serverless else BEDROCK_TECHNIQUES
    if run.technique is not None and run.technique not in known:
        raise InvalidRequest(f"--technique for {run.service} must be one of {', '.join(known)}, got {run.technique!r}")
    if serverless and run.epochs is not None:
        raise InvalidRequest("--epochs is Bedrock's epochCount; a serverless job's tokens already count its epochs")
    if not serverless and (run.peft is not None or run.sequence_length is not None):
        raise InvalidRequest("Bedrock takes no --peft or --seq-len (the service reads full fine-tuning at the "
                             "longest sequence)")  # fmt: skip
    if run.sequence_length is not None and not 0 < (sequence_length(run.sequence_length) or 0) <= MAX_SEQUENCE_LENGTH:
        raise InvalidRequest(f"--seq-len must be a count or the API's '<n>K' (1K-1024K), got {run.sequence_length!r}")
