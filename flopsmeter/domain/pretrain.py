"""Which pretraining compute applies to a job's base model, and where it came from.

Order (DESIGN.md): ``PRETRAIN_FLOPS`` given as an argument, then on the job's environment, then as a job tag,
then the bundled model catalog, else unknown. The first source that is *present* decides, within these rules
(each keeps the record at least as conservative as the facts support; docs/formulas.md "How we stay
conservative" lists them with their sources):

* A present but unusable value (unparseable, negative, zero, NaN, infinite) makes the compute unknown, with a
  warning: it never falls through to a later source, which could pick a larger figure.
* An implausible magnitude (no released model has one; a unit slip such as GFLOPs or PF-days is likelier) is
  flagged. Above ``PLAUSIBLE_PRETRAIN_FLOPS_MAX`` it is treated as unknown (it would raise the threshold);
  below ``PLAUSIBLE_PRETRAIN_FLOPS_MIN`` it is kept with a warning, because treating it as unknown would raise
  the threshold (under the guideline reading, from a third of the tiny value to 3.3e22): less conservative.
* A declared value more than the guideline's 30 % error margin (Annex A.2, para. 120) above the catalog's lowest
  estimate for the same base would raise the threshold on a figure the public record does not support: the
  classification uses the catalog's lowest estimate and says so, unless an explicit override reason is recorded
  (``contract.ENV_PRETRAIN_FLOPS_OVERRIDE_REASON`` / its tag), in which case the declared value is used and the
  reason goes into the record's basis.
* A declared value at or above 1e25 marks the base as systemic-risk (AI Act Art. 51(2)), whatever else is known.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from flopsmeter.domain.catalog import ESTIMATE_MARGIN, BaseModel, CatalogMatch, match_base_model
from flopsmeter.domain.model_names import MatchMethod
from flopsmeter.domain.numbers import exact, parse_flops
from flopsmeter.domain.thresholds import SYSTEMIC_RISK_TRAINING_FLOPS

# Plausible pretraining compute of a base model. Below 1e20 is under GPT-2 (Epoch AI: ~5e21 for its 774M variant,
# shared/research/regulation.md Q4); above 1e28 is ~20x the largest public estimates (~5e26) as of 2026.
PLAUSIBLE_PRETRAIN_FLOPS_MIN = 10**20
PLAUSIBLE_PRETRAIN_FLOPS_MAX = 10**28
MAX_OVERRIDE_REASON_LENGTH = 300


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
    catalog_match: MatchMethod | None = None  # how base_model_id was matched to the catalog (None: not matched)


@dataclass(frozen=True)
class _Declared:
    source: PretrainSource
    raw: str | float | None
    label: str


@dataclass(frozen=True)
class _Context:
    base_model_id: str | None
    model: BaseModel | None
    catalog_match: MatchMethod | None
    systemic: bool

    def result(
        self, flops: float | None, source: PretrainSource, basis: str, *, raw: str | None = None,
        warnings: Iterable[str] = (),
    ) -> PretrainCompute:  # fmt: skip
        return PretrainCompute(
            flops, source, basis, self.base_model_id, self.systemic, raw, tuple(warnings), self.catalog_match
        )


def resolve_pretrain_compute(
    *,
    environment_value: str | None = None,
    tag_value: str | None = None,
    argument_value: str | float | None = None,
    base_model_id: str | None = None,
    systemic_risk_base: bool = False,
    override_reason: str | None = None,
) -> PretrainCompute:
    """Pick the pretraining compute for a base model from the sources in priority order (module docstring)."""
    match = match_base_model(base_model_id)
    model = match.model if match else None
    systemic = systemic_risk_base or bool(model and model.systemic)
    notes = list(_match_notes(base_model_id, match))
    candidates = (
        _Declared(PretrainSource.ARGUMENT, argument_value, "PRETRAIN_FLOPS"),
        _Declared(PretrainSource.ENVIRONMENT, environment_value, "PRETRAIN_FLOPS (job environment)"),
        _Declared(PretrainSource.TAG, tag_value, "PRETRAIN_FLOPS (job tag)"),
    )
    declared = next((c for c in candidates if c.raw is not None), None)
    ctx = _Context(base_model_id, model, match.method if match else None, systemic)
    if declared is not None:
        return _from_declared(declared, ctx, notes, _clean_reason(override_reason))
    if model is not None:
        return _from_catalog(model, ctx, notes)
    basis = (
        "no PRETRAIN_FLOPS and base model not in the catalog"
        if base_model_id
        else "no PRETRAIN_FLOPS, no base model id"
    )
    return ctx.result(None, PretrainSource.UNKNOWN, basis, warnings=notes)


def _from_declared(
    declared: _Declared, ctx: _Context, notes: list[str], override_reason: str | None
) -> PretrainCompute:
    parsed = parse_flops(declared.raw, field=declared.label)
    shown = None if parsed.raw is None else str(parsed.raw)
    unknown = f"{declared.label} present but unusable"
    if parsed.value is None:
        warning = parsed.warning or f"{declared.label} unusable"
        return ctx.result(None, PretrainSource.UNKNOWN, unknown, raw=shown, warnings=(*notes, warning))
    value = exact(parsed.value)
    if value > PLAUSIBLE_PRETRAIN_FLOPS_MAX:
        warning = (
            f"{declared.label}={parsed.value:.2e} is above {PLAUSIBLE_PRETRAIN_FLOPS_MAX:.0e}, more than any base "
            "model's pretraining compute (a unit slip?); treated as unknown"
        )
        return ctx.result(None, PretrainSource.UNKNOWN, unknown, raw=shown, warnings=(*notes, warning))
    if value < PLAUSIBLE_PRETRAIN_FLOPS_MIN:
        notes.append(
            f"{declared.label}={parsed.value:.2e} is below {PLAUSIBLE_PRETRAIN_FLOPS_MIN:.0e}, less than any released "
            "base model's pretraining compute (a unit slip?); kept, since a lower figure only makes the "
            "classification stricter - check the value"
        )
    if value >= SYSTEMIC_RISK_TRAINING_FLOPS:
        ctx = replace(ctx, systemic=True)
        notes.append(
            f"{declared.label}={parsed.value:.2e} is at or above 1e+25: the base is treated as a systemic-risk "
            "model (AI Act Art. 51(2))"
        )
    model = ctx.model
    lowest = model.used_estimate if model else None
    if model is None or lowest is None or value <= ESTIMATE_MARGIN * exact(lowest.flops):
        basis = f"declared in {declared.label}"
        return ctx.result(parsed.value, declared.source, basis, raw=shown, warnings=notes)
    above = (
        f"{declared.label}={parsed.value:.2e} is more than 30 % above the catalog's lowest estimate "
        f"{lowest.flops:.2e} ({lowest.method}) for {model.model_id} (guideline Annex A.2 error margin)"
    )
    if override_reason:
        notes.append(f"{above}; the declared value is used because an override reason is recorded")
        basis = f"declared in {declared.label}; override reason: {override_reason}"
        return ctx.result(parsed.value, declared.source, basis, raw=shown, warnings=notes)
    notes.append(
        f"{above}: classified on the catalog figure; to use the declared value, record why it is right as a "
        "pretraining-compute override reason"
    )
    basis = f"catalog {model.model_id}: {lowest.method} ({lowest.note}); lower than the declared {parsed.value:.2e}"
    return ctx.result(lowest.flops, PretrainSource.CATALOG, basis, raw=shown, warnings=notes)


def _from_catalog(model: BaseModel, ctx: _Context, notes: list[str]) -> PretrainCompute:
    used = model.used_estimate
    if used is None:
        basis = f"catalog {model.model_id}: no published estimate"
        return ctx.result(None, PretrainSource.UNKNOWN, basis, warnings=(*notes, *model.warnings()))
    basis = f"catalog {model.model_id}: {used.method} ({used.note}); lowest of {len(model.estimates)} estimates"
    return ctx.result(used.flops, PretrainSource.CATALOG, basis, warnings=(*notes, *model.warnings()))


def _match_notes(reference: str | None, match: CatalogMatch | None) -> tuple[str, ...]:
    if match is None or match.method is MatchMethod.EXACT:
        return ()
    return (
        f"base model {(reference or '')[:120]!r} matched catalog entry {match.model.model_id} "
        f"({match.method}: {match.matched[:120]!r})",
    )


def _clean_reason(reason: str | None) -> str | None:
    """An override reason fit for a record: printable, bounded; blank means no override."""
    if reason is None:
        return None
    text = "".join(ch if ch.isprintable() else " " for ch in reason).strip()
    return text[:MAX_OVERRIDE_REASON_LENGTH] or None
