"""Which pretraining compute applies to a job's base model, and where it came from.

Order (DESIGN.md): ``PRETRAIN_FLOPS`` on the job's environment, else a job tag, else the bundled model
catalog, else unknown. The first source that is *present* decides. A present but unusable value
(unparseable, negative, zero, NaN, infinite) makes the compute unknown, with a warning: it never falls
through to a later source, since that could pick a larger figure and so a less conservative threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from flopsmeter.domain.catalog import find_base_model
from flopsmeter.domain.numbers import parse_flops


class PretrainSource(StrEnum):
    ENVIRONMENT = "environment"
    TAG = "tag"
    CATALOG = "catalog"
    ARGUMENT = "argument"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class PretrainCompute:
    flops: float | None
    source: PretrainSource
    basis: str
    base_model_id: str | None
    systemic_risk: bool
    raw: str | None = None
    warnings: tuple[str, ...] = ()


def resolve_pretrain_compute(
    *,
    environment_value: str | None = None,
    tag_value: str | None = None,
    argument_value: str | float | None = None,
    base_model_id: str | None = None,
    systemic_risk_base: bool = False,
) -> PretrainCompute:
    """Pick the pretraining compute for a base model from the sources in priority order."""
    model = find_base_model(base_model_id)
    systemic = systemic_risk_base or bool(model and model.systemic_risk)
    candidates = (
        (PretrainSource.ARGUMENT, argument_value, "PRETRAIN_FLOPS"),
        (PretrainSource.ENVIRONMENT, environment_value, "PRETRAIN_FLOPS (job environment)"),
        (PretrainSource.TAG, tag_value, "PRETRAIN_FLOPS (job tag)"),
    )
    for source, raw, label in candidates:
        if raw is None:
            continue
        parsed = parse_flops(raw, field=label)
        shown = None if parsed.raw is None else str(parsed.raw)
        if parsed.value is None:
            return PretrainCompute(
                None,
                PretrainSource.UNKNOWN,
                f"{label} present but unusable",
                base_model_id,
                systemic,
                shown,
                (parsed.warning or f"{label} unusable",),
            )
        return PretrainCompute(parsed.value, source, f"declared in {label}", base_model_id, systemic, shown)
    if model is not None:
        used = model.used_estimate
        if used is not None:
            others = [e for e in model.estimates if e is not used]
            basis = f"catalog {model.model_id}: {used.method} ({used.note}); lowest of {len(model.estimates)} estimates"
            warnings = tuple(
                f"catalog also lists {e.flops:.2e} ({e.method}) for {model.model_id}; the lower figure is used"
                for e in others
            )
            return PretrainCompute(
                used.flops, PretrainSource.CATALOG, basis, model.model_id, systemic, warnings=warnings
            )
        return PretrainCompute(
            None, PretrainSource.UNKNOWN, f"catalog {model.model_id}: no published estimate", model.model_id, systemic
        )
    basis = (
        "no PRETRAIN_FLOPS and base model not in the catalog"
        if base_model_id
        else "no PRETRAIN_FLOPS, no base model id"
    )
    return PretrainCompute(None, PretrainSource.UNKNOWN, basis, base_model_id, systemic)
