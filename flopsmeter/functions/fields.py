"""The settings the stack's configuration and the functions' settings share, each defined once.

``infra/config.py`` validates ``cdk.json`` context into ``DeployConfig`` (lower-case keys) and the functions
validate their environment into ``flopsmeter.functions.settings`` models (upper-case variables). Where both hold the
same setting (retention, policy, CloudTrail wait, lookback, energy assumptions, deployment mode, member lists), its
type is defined here once, with its bounds and the one-line message a bad value gets, and its default beside it:
the stack cannot synthesize a value a function would refuse at cold start. Pure pydantic, no ``aws_cdk`` (the Lambda
package imports this module).

The validators read values as ``cdk synth -c key=value`` and the environment pass them (strings) as well as JSON
values, and never take a boolean for a number.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, ValidationError, ValidatorFunctionWrapHandler, WrapValidator
from pydantic_core import PydanticCustomError

from flopsmeter.contract import DEPLOYMENT_MODES
from flopsmeter.domain.thresholds import POLICIES

NOT_ALLOWED = "not_allowed"  # the error type of every message written here (pydantic's own wording is replaced)
REGION = r"^[a-z]{2}(-[a-z]+)+-\d$"
ACCOUNT = r"^[0-9]{12}$"


def not_allowed(message: str) -> PydanticCustomError:
    return PydanticCustomError(NOT_ALLOWED, message)


def _validated(value: Any, handler: ValidatorFunctionWrapHandler, what: str) -> Any:
    """``handler(value)``, any failure reading as ``what`` (what is allowed) or as the message one of our own
    validators wrote; a boolean is refused before it could pass for 0 or 1."""
    if isinstance(value, bool):
        raise not_allowed(what)
    try:
        return handler(value)
    except ValidationError as err:
        ours = [e["msg"] for e in err.errors() if e["type"] == NOT_ALLOWED]
        raise not_allowed(ours[0] if ours else what) from None


def explained(what: str) -> WrapValidator:
    """The field's failures read as ``what`` (``Annotated[str, Field(pattern=...), explained("must be ...")]``)."""
    return WrapValidator(lambda value, handler: _validated(value, handler, what))


def whole_number(low: int, high: int) -> WrapValidator:
    """An ``int`` from ``low`` to ``high`` (``Annotated[int, whole_number(1, 100)]``)."""
    what = f"must be a whole number from {low} to {high}"

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        number = _validated(value, handler, what)
        if not low <= number <= high:
            raise not_allowed(what)
        return number

    return WrapValidator(validate)


def number(low: float, high: float, *, above_low: bool = False, below_high: bool = False) -> WrapValidator:
    """A ``float`` in [``low``, ``high``], the ends left out with ``above_low``/``below_high``; never NaN."""
    lower = f"greater than {low:g}" if above_low else f"from {low:g}"
    upper = f"less than {high:g}" if below_high else (f"at most {high:g}" if above_low else f"to {high:g}")
    what = f"must be a number {lower} {'and ' if above_low or below_high else ''}{upper}"

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        found = _validated(value, handler, what)
        too_low = found <= low if above_low else found < low
        too_high = found >= high if below_high else found > high
        if math.isnan(found) or too_low or too_high:
            raise not_allowed(what)
        return found

    return WrapValidator(validate)


def matching(pattern: str, what: str, *, blank_is_none: bool = False) -> WrapValidator:
    """A string matching ``pattern`` (``what``: the message); with ``blank_is_none`` an empty one is None (unset)."""
    compiled = re.compile(pattern)

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        text = _validated(value, handler, what)
        if blank_is_none and not text:
            return None
        if not isinstance(text, str) or not compiled.match(text):
            raise not_allowed(what)
        return text

    return WrapValidator(validate)


def one_of(choices: tuple[Any, ...]) -> WrapValidator:
    """One of ``choices`` (after the wrapped type parsed the value: ``Annotated[int, one_of((1, 3, 5))]``)."""
    what = "must be one of " + ", ".join(str(c) for c in choices)

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        found = _validated(value, handler, what)
        if found not in choices:
            raise not_allowed(what)
        return found

    return WrapValidator(validate)


def _split(raw: Any) -> Any:
    """A JSON list, or a comma-separated string (``-c key=a,b``, an environment variable); blanks dropped."""
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple):
        return raw  # refused by the tuple type, with the list's message
    return tuple(str(item).strip() for item in items if str(item).strip())


def items_matching(pattern: str, what: str) -> WrapValidator:
    """A tuple of strings each matching ``pattern`` (``Annotated[tuple[str, ...], items_matching(...)]``), from a
    list or a comma-separated string; ``what`` names them in the message, which lists the ones that do not match."""
    compiled = re.compile(pattern)
    message = f"must be a list of {what}"

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        values: tuple[str, ...] = _validated(_split(value), handler, message)
        bad = [v for v in values if not compiled.match(v)]
        if bad:
            raise not_allowed(f"{message}; not: " + ", ".join(bad))
        return values

    return WrapValidator(validate)


def _flag(raw: Any) -> Any:
    """A boolean, or its text (``true``/``false``, any case)."""
    if isinstance(raw, str) and raw.strip().lower() in {"true", "false"}:
        return raw.strip().lower() == "true"
    if isinstance(raw, bool):
        return raw
    raise not_allowed("must be true or false")


POLICY_MESSAGE = "unknown policy; known policies: " + ", ".join(sorted(POLICIES))


def _known_policy(value: str) -> str:
    if value not in POLICIES:
        raise not_allowed(POLICY_MESSAGE)
    return value


Flag = Annotated[bool, BeforeValidator(_flag)]

# Object Lock COMPLIANCE default retention (AI Act Art. 54(3)(b): 10 years)
DEFAULT_RETENTION_YEARS = 10
RetentionYears = Annotated[int, whole_number(1, 100)]
PrimaryPolicy = Annotated[str, AfterValidator(_known_policy), explained(POLICY_MESSAGE)]  # an id of POLICIES
ApproachingFraction = Annotated[float, number(0, 1, above_low=True, below_high=True)]  # share of a threshold
# How long the classifier waits for CloudTrail to show a job's launch call before recording "not_found".
DEFAULT_CLOUDTRAIL_MAX_WAIT_SECONDS = 1800
CloudTrailMaxWaitSeconds = Annotated[int, whole_number(0, 6 * 3600)]
# How far back the reconciler lists ended jobs (at most two weeks).
DEFAULT_RECONCILE_LOOKBACK_HOURS = 24
ReconcileLookbackHours = Annotated[int, whole_number(1, 24 * 14)]
# issue 16: the energy estimate's assumptions (docs/obligations.md)
EnergyPue = Annotated[float, number(1, 5)]
EnergyPowerUtilisation = Annotated[float, number(0, 1, above_low=True)]
# organization mode (docs/organization.md): contract.DEPLOYMENT_MODES
DeploymentMode = Annotated[Literal["single-account", "organization"], one_of(DEPLOYMENT_MODES)]
RegionList = Annotated[tuple[str, ...], items_matching(REGION, "AWS region names")]
AccountList = Annotated[tuple[str, ...], items_matching(ACCOUNT, "12-digit AWS account ids")]
