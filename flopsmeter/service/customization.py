"""Managed customization jobs and recipe jobs in a record: the ``estimated`` method's FLOPs block, the
``customization`` and ``recipe`` blocks, and whether a declaration must be asked for.

SageMaker AI serverless customization jobs are training jobs: DescribeTrainingJob carries ``ServerlessJobConfig``
and ``BillableTokenCount`` (``JobFacts.serverless`` / ``billable_tokens``), no instances to bound them, and no
meter. ``apply_serverless`` replaces the record's FLOPs with the estimate (``flopsmeter.domain.customization``);
the hardware-ceiling field keeps the unknown-instance placeholder, which bounds nothing here and says so.
Recipe jobs keep their metered or ceiling-bounded FLOPs; ``recipe_block`` only records what the recipe was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flopsmeter import contract
from flopsmeter.audit.record import AuditRecord, CustomizationInfo, FlopsInfo, HardwareCeilingInfo, RecipeInfo
from flopsmeter.domain.customization import CustomizationEstimate, JobKind, estimate_serverless_job
from flopsmeter.domain.pretrain import PretrainCompute, resolve_pretrain_compute
from flopsmeter.domain.recipes import recipe_from_job
from flopsmeter.service.facts import clean_text, parse_bool

NO_INSTANCES = (
    "a managed service runs this job on instances it does not disclose: the hardware-ceiling field holds the "
    "unknown-instance placeholder and bounds nothing; the job is classified on its estimate"
)


def estimated_flops(estimate: CustomizationEstimate, ceiling: HardwareCeilingInfo, **kept: Any) -> FlopsInfo:
    """The FLOPs block of an ``estimated`` job: the modification's share (none for an evaluation) is classified."""
    est = estimate.estimate
    uncertainty = (
        f"estimated ({estimate.service}): {est.technique.value} at {est.cost_basis}, {est.tokens.tokens:,} tokens "
        f"({est.tokens.basis}); classified on the upper end of +/-{est.uncertainty:.0%}"
    )
    if estimate.kind is JobKind.EVALUATION:
        uncertainty += "; an evaluation adds nothing to the modification's compute (guideline para. 118)"
    return FlopsInfo(
        method="estimated",
        classified_flops=estimate.modification_flops,
        hardware_ceiling=ceiling,
        tokens=est.tokens.tokens if est.tokens.known else None,
        uncertainty=uncertainty,
        **kept,
    )


def customization_block(estimate: CustomizationEstimate) -> CustomizationInfo:
    return CustomizationInfo.model_validate(estimate.as_dict())


def serverless_estimate(
    serverless: Mapping[str, Any] | None, billable_tokens: object, declared_tokens: str | None = None
) -> CustomizationEstimate | None:
    """The estimate of a serverless customization job (DescribeTrainingJob has ``ServerlessJobConfig``), else None.
    ``declared_tokens``: the job's ``FLOPSMETER_DECLARED_TOKENS`` / ``flopsmeter:declared-tokens``."""
    if not serverless:
        return None
    return estimate_serverless_job(serverless, billable_tokens, declared_tokens)


def apply_serverless(
    estimate: CustomizationEstimate, flops: FlopsInfo, warnings: list[str]
) -> tuple[FlopsInfo, float, CustomizationInfo]:
    """The record's FLOPs for a serverless customization job: the estimate replaces ceiling and meter."""
    warnings.extend([*estimate.warnings(), NO_INSTANCES])
    info = estimated_flops(
        estimate, flops.hardware_ceiling, metered=flops.metered, declared=flops.declared, recompute_flops=None
    )
    return info, estimate.modification_flops, customization_block(estimate)


def recipe_block(hyperparameters: Mapping[str, str], environment: Mapping[str, str]) -> RecipeInfo | None:
    """What a recipe job says about its recipe (None for a job that is not one)."""
    found = recipe_from_job(hyperparameters, environment)
    return None if found is None else RecipeInfo.model_validate(found.as_dict())


def declaration_needed(record: AuditRecord) -> bool:
    """Does this record rest on a bound rather than a count (tokens or model size), so a person must declare?"""
    block = record.customization
    return block is not None and block.kind == JobKind.FINE_TUNING.value and block.estimate.needs_declaration


def tagged_pretrain(tags: Mapping[str, str], base_model_id: str | None) -> tuple[PretrainCompute, list[str]]:
    """The base model's pretraining compute of a job whose only settings are its tags (Bedrock jobs, training
    sessions): ``flopsmeter:pretrain-flops``, ``flopsmeter:base-model`` (else ``base_model_id``, the base the job
    itself names), ``flopsmeter:systemic-risk-base`` and the override reason."""
    systemic, systemic_warning = parse_bool(tags.get(contract.TAG_SYSTEMIC_RISK_BASE), "systemic-risk flag")
    base_id, base_warning = clean_text(tags.get(contract.TAG_BASE_MODEL) or base_model_id, "base model")
    reason, reason_warning = clean_text(tags.get(contract.TAG_PRETRAIN_FLOPS_OVERRIDE_REASON), "override reason", 512)
    pretrain = resolve_pretrain_compute(
        tag_value=tags.get(contract.TAG_PRETRAIN_FLOPS),
        base_model_id=base_id,
        systemic_risk_base=systemic,
        override_reason=reason,
    )
    warnings = [w for w in (systemic_warning, base_warning, reason_warning) if w] + list(pretrain.warnings)
    return pretrain, warnings
