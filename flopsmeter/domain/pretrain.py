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
* A declared value above what the base's size could plausibly need (``plausible_pretrain_ceiling``: 6·N·D with N
  the base's parameter count, from the catalog or the size its name states, and D the largest published training
  set, plus the 30 % margin) is not used without an override reason, whether or not the catalog has an estimate:
  the catalog's lowest estimate applies if it has one, else the compute is unknown. Such a declaration does not
  make the base systemic either (it is not believed).
* A declared value at or above 1e25 marks the base as systemic-risk (AI Act Art. 51(2)), whatever else is known.
* A name the catalog matched only by the family and size it declares (a fine-tuned derivative) is treated as that
  base, and the basis says so; a base from a private SageMaker hub is flagged (it may already be modified).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from fractions import Fraction

from flopsmeter.domain.catalog import ESTIMATE_MARGIN, BaseModel
from flopsmeter.domain.catalog_names import CatalogMatch, match_base_model
from flopsmeter.domain.customization_names import private_hub_account, private_hub_warnings
from flopsmeter.domain.model_names import MatchMethod, stated_parameters
from flopsmeter.domain.numbers import exact, parse_flops
from flopsmeter.domain.thresholds import SYSTEMIC_RISK_TRAINING_FLOPS

# Plausible pretraining compute of a base model. Below 1e20 is under GPT-2 (Epoch AI: ~5e21 for its 774M variant,
# shared/research/regulation.md Q4); above 1e28 is ~20x the largest public estimates (~5e26) as of 2026.
PLAUSIBLE_PRETRAIN_FLOPS_MIN = 10**20
PLAUSIBLE_PRETRAIN_FLOPS_MAX = 10**28
MAX_OVERRIDE_REASON_LENGTH = 300
# The largest published pretraining set of a released model: ~40T tokens (Llama 4 Scout; Meta Llama 4 model card,
# github.com/meta-llama/llama-models, models/llama4/MODEL_CARD.md; Qwen3: 36T, arXiv:2505.09388). With 6·N·D
# (guideline Annex A.2.2) it bounds what a base of N parameters could plausibly have needed
# (shared/research/regulation.md Q4; docs/formulas.md "How we stay conservative").
LARGEST_PUBLISHED_TRAINING_TOKENS = 40 * 10**12
LARGEST_PUBLISHED_TRAINING_SOURCE = "Llama 4 Scout, ~40T tokens (Meta Llama 4 model card)"
# Head-room over 6·N·D_max for figures from the hardware method (guideline Annex A.2.1: hours x peak x U counts
# overhead 6·N·D does not, plus the 30 % margin of para. 120): the guideline's own Annex A.3 Model H (370k
# H100-hours for a 1.23B model, 6.5e23) is 2.2x 6·N·D_max; 3x keeps every published estimate plausible.
PLAUSIBILITY_HEADROOM = 3


def plausible_pretrain_ceiling(parameters: float) -> Fraction:
    """The most pretraining compute a base of ``parameters`` could plausibly have needed: 6·N·D_max x 3."""
    return 6 * exact(parameters) * LARGEST_PUBLISHED_TRAINING_TOKENS * PLAUSIBILITY_HEADROOM


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
    parameters: float | None = None  # the base's total parameters (catalog, else the size its name states)
    parameters_basis: str = ""

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
    notes += private_hub_warnings(private_hub_account(base_model_id), base_model_id or "")
    parameters, parameters_basis = _parameters(base_model_id, model)
    ctx = _Context(base_model_id, model, match.method if match else None, systemic, parameters, parameters_basis)
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
    implausible = _above_physics(parameters=ctx, value=value, label=declared.label, shown=parsed.value)
    if implausible is not None:
        if not override_reason:
            return _not_believed(ctx, notes, implausible, shown)
        notes.append(f"{implausible}; the declared value is used because an override reason is recorded")
        basis = f"declared in {declared.label}; override reason: {override_reason}"
        if value >= SYSTEMIC_RISK_TRAINING_FLOPS:
            ctx = replace(ctx, systemic=True)
        return ctx.result(parsed.value, declared.source, basis, raw=shown, warnings=notes)
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


def _parameters(reference: str | None, model: BaseModel | None) -> tuple[float | None, str]:
    if model is not None and model.parameters:
        return model.parameters, f"catalog {model.model_id}: {model.parameters:.3g} parameters"
    stated = stated_parameters(reference or "")
    return stated, (f"the name {(reference or '')[:120]!r} states {stated:.3g} parameters" if stated else "")


def _above_physics(*, parameters: _Context, value: Fraction, label: str, shown: float) -> str | None:
    """Why ``value`` is more than the base's size could plausibly need (None: it is not, or no size is known)."""
    if parameters.parameters is None:
        return None
    ceiling = plausible_pretrain_ceiling(parameters.parameters)
    if value <= ceiling:
        return None
    tokens = float(value / (6 * exact(parameters.parameters)))
    return (
        f"{label}={shown:.2e} is more than a base of this size could plausibly need ({parameters.parameters_basis}; "
        f"it would take {tokens:.1e} training tokens; 6·N·D with D at most {LARGEST_PUBLISHED_TRAINING_TOKENS:.0e}, "
        f"{LARGEST_PUBLISHED_TRAINING_SOURCE}, x{PLAUSIBILITY_HEADROOM} head-room: {float(ceiling):.2e})"
    )


def _not_believed(ctx: _Context, notes: list[str], why: str, shown: str | None) -> PretrainCompute:
    """An implausible declaration without an override reason: the catalog's lowest estimate, else unknown."""
    advice = "to use the declared value, record why it is right as a pretraining-compute override reason"
    lowest = ctx.model.used_estimate if ctx.model else None
    if ctx.model is not None and lowest is not None:
        notes.append(f"{why}: classified on the catalog figure; {advice}")
        basis = f"catalog {ctx.model.model_id}: {lowest.method} ({lowest.note}); the declared value is implausible"
        return ctx.result(lowest.flops, PretrainSource.CATALOG, basis, raw=shown, warnings=notes)
    notes.append(f"{why}: treated as unknown (the conservative default applies); {advice}")
    return ctx.result(None, PretrainSource.UNKNOWN, "declared value implausible for the base's size", raw=shown,
                      warnings=notes)  # fmt: skip


def _from_catalog(model: BaseModel, ctx: _Context, notes: list[str]) -> PretrainCompute:
    used = model.used_estimate
    derived = _family_size_basis(ctx)
    if used is None:
        basis = f"{derived}catalog {model.model_id}: no published estimate"
        return ctx.result(None, PretrainSource.UNKNOWN, basis, warnings=(*notes, *model.warnings()))
    basis = (
        f"{derived}catalog {model.model_id}: {used.method} ({used.note}); lowest of {len(model.estimates)} estimates"
    )
    return ctx.result(used.flops, PretrainSource.CATALOG, basis, warnings=(*notes, *model.warnings()))


def _family_size_basis(ctx: _Context) -> str:
    if ctx.catalog_match is not MatchMethod.FAMILY_SIZE or ctx.model is None:
        return ""
    return f"the name {(ctx.base_model_id or '')[:120]!r} declares the family and size of {ctx.model.model_id}; "


def _match_notes(reference: str | None, match: CatalogMatch | None) -> tuple[str, ...]:
    if match is None or match.method is MatchMethod.EXACT:
        return ()
    if match.method is MatchMethod.FAMILY_SIZE:
        return (
            f"base model {(reference or '')[:120]!r} is not in the catalog; its name declares the family and size of "
            f"{match.model.model_id}: treated as that base for the systemic flag and threshold (a derivative carries "
            "at least its base's compute, guideline para. 117); declare PRETRAIN_FLOPS if it is not",
        )
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
