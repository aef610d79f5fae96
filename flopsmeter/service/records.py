"""Building a job's audit record from its facts: pretraining compute, FLOPs (metered or the hardware ceiling),
CloudTrail provenance, lineage, and the classification under every policy (pure domain code)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Literal

from flopsmeter import contract
from flopsmeter.audit.blocks import BlockInputs, with_energy_and_obligations
from flopsmeter.audit.record import (
    AuditRecord,
    BaseModelInfo,
    CloudTrailRef,
    FlopsInfo,
    HardwareCeilingInfo,
    JobInfo,
    PolicyClassification,
    record_id_for,
)
from flopsmeter.domain.classification import Classification, classify
from flopsmeter.domain.hardware import HardwareCeiling
from flopsmeter.domain.numbers import parse_flops
from flopsmeter.domain.pretrain import PretrainCompute, resolve_pretrain_compute
from flopsmeter.ports import MeteredFigures
from flopsmeter.service.batch_attempts import attempt_block
from flopsmeter.service.customization import apply_serverless, recipe_block, serverless_estimate
from flopsmeter.service.dependencies import ClassifyRequest, Dependencies, ServiceConfig
from flopsmeter.service.facts import JobFacts, clean_text, job_ceiling, parse_bool
from flopsmeter.service.launcher import resolve_launcher
from flopsmeter.service.lineage import Lineages
from flopsmeter.service.lineage_record import job_lineage

Channel = Literal["cloudwatch", "final_metric_data"]
METRICS_WINDOW_BEFORE = timedelta(minutes=5)
METRICS_WINDOW_AFTER = timedelta(minutes=15)  # the meter's last datapoint may land after the job's end


def build_record(
    facts: JobFacts,
    request: ClassifyRequest,
    deps: Dependencies,
    config: ServiceConfig,
    now: datetime,
    *,
    provenance: CloudTrailRef | None = None,
) -> AuditRecord:
    """``provenance``: who launched the job when no CloudTrail call created it (a HyperPod job's report)."""
    warnings: list[str] = list(facts.warnings)
    if request.reconciled:
        warnings.insert(
            0, "reconciled: no state-change event was processed for this job; the scheduled reconciler classified it"
        )
    env_tokens, tag_tokens = facts.setting(contract.ENV_DECLARED_TOKENS, contract.TAG_DECLARED_TOKENS)
    declared_tokens = env_tokens if env_tokens is not None else tag_tokens  # issue 23: where AWS reports none
    managed = serverless_estimate(facts.serverless, facts.billable_tokens, declared_tokens)  # issue 17
    pretrain, pretrain_warnings = _pretrain(facts, managed.base.model_id if managed else None)
    warnings += pretrain_warnings
    ceiling, ceiling_warnings = job_ceiling(facts)
    warnings += ceiling_warnings
    figures, channel = metered_figures(facts, deps, warnings)
    flops_info, own_flops = _flops(facts, figures, ceiling, warnings)
    if flops_info.metered is not None:
        flops_info = flops_info.model_copy(update={"metered_channel": channel})
    customization = None
    if managed is not None:
        flops_info, own_flops, customization = apply_serverless(managed, flops_info, warnings)
    lineage = job_lineage(facts, own_flops, deps, config, now)
    warnings += lineage.found.warnings
    batch = attempt_block(facts, deps, config, now, warnings)  # issue 26: an AWS Batch attempt names its service job
    launched = replace(facts, launched_by=(batch.service_job_arn,)) if batch else facts  # -> SubmitServiceJob
    cloudtrail = provenance or resolve_launcher(
        launched, deps, config, now, warnings
    )  # provenance by key, else LookupEvents
    result = classify(
        lineage.cumulative_flops,
        pretrain.flops,
        systemic_risk_base=pretrain.systemic_risk,
        primary_policy=config.primary_policy,
        approaching_fraction=config.approaching_fraction,
        warnings=warnings,
    )
    result = lineage.classified(result)  # issue 18: an incomplete lineage is at least approaching
    record = AuditRecord(
        record_id=record_id_for(facts.arn),
        recorded_at=now,
        job=_job_info(facts, ceiling),
        base_model=base_model_info(pretrain),
        flops=flops_info,
        classifications=_classifications(result),
        primary_policy=result.primary_policy,
        outcome=result.primary.outcome.value,
        cloudtrail=cloudtrail,
        eventbridge_event_id=request.eventbridge_event_id,
        lineage=lineage.record(facts),
        warnings=_dedupe(result.warnings),
        customization=customization,
        recipe=recipe_block(facts.hyperparameters, facts.environment),
        batch=batch,
    )
    inputs = _block_inputs(
        config, lineage.found, figures.threshold_crossed_at if flops_info.method == "metered" else None
    )
    return with_energy_and_obligations(record, inputs)  # issue 16: energy, obligations


def _block_inputs(config: ServiceConfig, parents: Lineages, metered_crossed_at: datetime | None) -> BlockInputs:
    return BlockInputs(
        established_outside_eu=config.established_outside_eu,
        energy=config.energy,
        parent_lineage_kwh=parents.lineage_kwh,
        parent_crossed_at=parents.crossed_at,
        parent_crossed_threshold=parents.crossed_threshold,
        parent_lineage_started_at=parents.earliest_start,
        metered_crossed_at=metered_crossed_at,
    )


def metered_figures(facts: JobFacts, deps: Dependencies, warnings: list[str]) -> tuple[MeteredFigures, Channel]:
    """The meter's figures: its CloudWatch series, else (no FLOPs datapoint) the last values of its stdout metrics
    that SageMaker keeps in FinalMetricDataList. The channel says which; a job with neither gets the ceiling."""
    start = facts.start_time or facts.creation_time or facts.end_time
    figures = deps.meter.job_metrics(facts.name, start - METRICS_WINDOW_BEFORE, facts.end_time + METRICS_WINDOW_AFTER)
    if figures.cumulative_flops is not None or figures.meter_incomplete not in (None, 0):
        return figures, "cloudwatch"
    final = facts.final_metrics
    if contract.STDOUT_METRIC_CUMULATIVE_FLOPS not in final and contract.STDOUT_METRIC_METER_INCOMPLETE not in final:
        return figures, "cloudwatch"
    warnings.append(
        "the meter's CloudWatch series is missing: its figures come from the job's FinalMetricDataList (the last "
        "values of its stdout metrics, SageMaker MetricDefinitions); a restart from zero within the job would not "
        "show there"
    )
    return (
        MeteredFigures(
            cumulative_flops=final.get(contract.STDOUT_METRIC_CUMULATIVE_FLOPS),
            tokens=final.get(contract.STDOUT_METRIC_TOKENS),
            non_padding_tokens=final.get(contract.STDOUT_METRIC_NON_PADDING_TOKENS),
            meter_incomplete=final.get(contract.STDOUT_METRIC_METER_INCOMPLETE),
        ),
        "final_metric_data",
    )


def base_model_info(pretrain: PretrainCompute) -> BaseModelInfo:
    """The record's ``base_model`` block: the pretraining compute used, where it came from, how the name matched."""
    return BaseModelInfo(
        model_id=pretrain.base_model_id,
        pretrain_flops=pretrain.flops,
        source=pretrain.source.value,
        basis=pretrain.basis,
        systemic_risk=pretrain.systemic_risk,
        raw_value=clean_text(pretrain.raw, "PRETRAIN_FLOPS", 64)[0],
        catalog_match=pretrain.catalog_match,
    )


def _pretrain(facts: JobFacts, job_base_model: str | None = None) -> tuple[PretrainCompute, list[str]]:
    """``job_base_model``: the base model the job itself names (a serverless job's hub content), used when neither
    the environment nor a tag names one."""
    warnings: list[str] = []
    env_flops, tag_flops = facts.setting(contract.ENV_PRETRAIN_FLOPS, contract.TAG_PRETRAIN_FLOPS)
    env_model, tag_model = facts.setting(contract.ENV_BASE_MODEL, contract.TAG_BASE_MODEL)
    named = env_model if env_model is not None else tag_model if tag_model is not None else job_base_model
    model_id, model_warning = clean_text(named, "base model id")
    env_sys, tag_sys = facts.setting(contract.ENV_SYSTEMIC_RISK_BASE, contract.TAG_SYSTEMIC_RISK_BASE)
    systemic, systemic_warning = parse_bool(env_sys if env_sys is not None else tag_sys, "systemic-risk flag")
    env_reason, tag_reason = facts.setting(
        contract.ENV_PRETRAIN_FLOPS_OVERRIDE_REASON, contract.TAG_PRETRAIN_FLOPS_OVERRIDE_REASON
    )
    reason, reason_warning = clean_text(env_reason if env_reason is not None else tag_reason, "override reason", 512)
    warnings += [w for w in (model_warning, systemic_warning, reason_warning) if w]
    pretrain = resolve_pretrain_compute(
        environment_value=env_flops,
        tag_value=tag_flops,
        base_model_id=model_id,
        systemic_risk_base=systemic,
        override_reason=reason,
    )
    if env_flops is not None and tag_flops is not None and env_flops.strip() != tag_flops.strip():
        warnings.append("PRETRAIN_FLOPS differs between the job environment and its tag; the environment is used")
    return pretrain, [*warnings, *pretrain.warnings]


def _sane(value: float | None, what: str, warnings: list[str]) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or math.isnan(value)
        or math.isinf(value)
        or value < 0
    ):
        warnings.append(f"metered {what} {value!r} is not a finite number >= 0; ignored")
        return None
    return float(value)


def _flops(
    facts: JobFacts, figures: MeteredFigures, ceiling: HardwareCeiling, warnings: list[str]
) -> tuple[FlopsInfo, float]:
    metered = _sane(figures.cumulative_flops, contract.METRIC_CUMULATIVE_FLOPS, warnings)
    if figures.restarts:
        warnings.append(
            f"the meter's cumulative FLOPs fell {figures.restarts} time(s) during the job (training restarted from "
            "zero without its saved totals): the runs' peaks were added"
        )
    if figures.cumulative_flops is not None and metered is None:
        warnings.append("the job is classified on its hardware ceiling because its metered FLOPs are unusable")
    tokens = _sane(figures.tokens, contract.METRIC_CUMULATIVE_TOKENS, warnings)
    non_padding = _sane(figures.non_padding_tokens, contract.METRIC_CUMULATIVE_NON_PADDING_TOKENS, warnings)
    recompute = _sane(figures.recompute_flops, contract.METRIC_RECOMPUTE_FLOPS, warnings)
    env_declared, tag_declared = facts.setting(contract.ENV_DECLARED_FLOPS, contract.TAG_DECLARED_FLOPS)
    declared_raw = env_declared if env_declared is not None else tag_declared
    declared = parse_flops(declared_raw, field="declared FLOPs")
    if declared.warning:
        warnings.append(declared.warning)
    incomplete = _meter_incomplete(figures.meter_incomplete, metered, ceiling, warnings)
    if metered is not None and not (incomplete and metered <= ceiling.flops):
        method, own, uncertainty = (
            "metered",
            metered,
            (
                "metered by the flopsmeter callback: architecture-based forward+backward matmul FLOPs including "
                "attention, frozen-parameter aware; the hardware ceiling is an upper bound"
            ),
        )
        if metered > ceiling.flops:
            warnings.append(
                f"metered FLOPs {metered:.2e} exceed the hardware ceiling {ceiling.flops:.2e}: check the "
                "meter or the accelerator catalog (the larger, metered figure is used)"
            )
    else:
        method, own, uncertainty = (
            "hardware_ceiling",
            ceiling.flops,
            (
                "upper bound: chips x training seconds x dense peak FLOP/s at utilisation 1.0; the job's real compute "
                "is lower"
            ),
        )
    if declared.value is not None and declared.value > own:
        warnings.append(
            f"declared FLOPs {declared.value:.2e} exceed the {method} figure {own:.2e}; the declared "
            "value is recorded, not used for classification"
        )
    info = FlopsInfo(
        method=method,
        classified_flops=own,
        metered=metered,
        hardware_ceiling=HardwareCeilingInfo.from_ceiling(ceiling),
        declared=declared.value,
        tokens=None if tokens is None else int(tokens),
        non_padding_tokens=None if non_padding is None else int(non_padding),
        recompute_flops=recompute,
        uncertainty=uncertainty,
    )
    return info, own


def _meter_incomplete(
    value: float | None, metered: float | None, ceiling: HardwareCeiling, warnings: list[str]
) -> bool:
    """Did the job's meter report (``MeterIncomplete``, Maximum over the window) that its totals miss part of the job?

    None or 0 means no; any other value (1, NaN, a negative) means yes: a doubtful flag never makes the
    classification less conservative. An incomplete metered figure is kept in the record but the job is classified
    on its hardware ceiling (or on the metered figure, if that is larger).
    """
    if value is None or value == 0:
        return False
    if metered is None:
        warnings.append(
            f"the job's meter reported that it could not meter the job ({contract.METRIC_METER_INCOMPLETE}="
            f"{value!r}) and sent no FLOPs; classified on the hardware ceiling"
        )
    else:
        warnings.append(
            f"the job's meter reported incomplete totals ({contract.METRIC_METER_INCOMPLETE}={value!r}: e.g. resumed "
            f"without saved totals, or interrupted across ranks); its metered figure {metered:.2e} (which may "
            f"include an extrapolated estimate) is recorded but not trusted: classified on the "
            + ("hardware ceiling" if metered <= ceiling.flops else "metered figure, which exceeds the hardware ceiling")
        )
    return True


def _job_info(facts: JobFacts, ceiling: HardwareCeiling) -> JobInfo:
    return JobInfo(
        name=facts.name,
        arn=facts.arn,
        account_id=facts.account_id,
        region=facts.region,
        status=facts.status,  # checked terminal by the caller
        failure_reason=facts.failure_reason,
        creation_time=facts.creation_time,
        start_time=facts.start_time,
        end_time=facts.end_time,
        instance_type=ceiling.instance_type,
        instance_count=ceiling.instance_count,
        billable_seconds=facts.billable_seconds,
        training_seconds=facts.training_seconds,
        training_seconds_source=facts.training_seconds_source,
    )


def _classifications(result: Classification) -> list[PolicyClassification]:
    return [PolicyClassification.from_result(r) for r in result.results]


def _dedupe(items: tuple[str, ...] | list[str]) -> list[str]:
    return list(dict.fromkeys(items))
