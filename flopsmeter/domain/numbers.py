"""Parsing FLOP counts as people write them (``PRETRAIN_FLOPS=1.5e24`` and friends).

A parse never raises: a value that is not a finite, positive number comes back as ``None`` with a
warning that says why, so that the caller falls back to the conservative "unknown" branch.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from flopsmeter.domain.errors import InvalidFlops

MAX_RAW_LENGTH = 64  # longer strings are not numbers anyone typed; refuse them before any regex runs

# "1.5x10^24", "1.5 × 10^24", "1.5*10**24", "1.5·10^24"
_TIMES_TEN = re.compile(
    r"^([0-9][0-9_]*(?:\.[0-9_]*)?)\s*(?:x|×|\*|·)\s*10\s*(?:\^|\*\*)\s*([+-]?[0-9]+)$", re.IGNORECASE
)
_PLAIN = re.compile(r"^[+-]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:e[+-]?[0-9]+)?$", re.IGNORECASE)


@dataclass(frozen=True)
class ParsedFlops:
    """The outcome of parsing a raw FLOP count: a value, or None and the reason."""

    value: float | None
    raw: str | None
    warning: str | None = None


def _shown(raw: str) -> str:
    """A safe, short rendering of untrusted input for a warning (no control characters, bounded)."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in raw[:MAX_RAW_LENGTH])
    return repr(cleaned + ("…" if len(raw) > MAX_RAW_LENGTH else ""))


def parse_flops(raw: str | float | int | None, *, field: str = "PRETRAIN_FLOPS") -> ParsedFlops:
    """Parse a FLOP count; anything but a finite number > 0 becomes unknown, with a warning.

    Accepts ``1.5e24``, ``1.5E+24``, `` 1500000000000000000000000 ``, ``1_500e21`` and ``1.5x10^24``.
    """
    if raw is None:
        return ParsedFlops(None, None)
    if isinstance(raw, bool):
        return ParsedFlops(None, str(raw), f"{field}={raw!r} is not a number; treated as unknown")
    if isinstance(raw, int | float):
        return _check(float(raw) if _fits_float(raw) else math.inf, str(raw), field)
    text = raw.strip()
    if not text:
        return ParsedFlops(None, raw, f"{field} is empty; treated as unknown")
    if len(text) > MAX_RAW_LENGTH:
        return ParsedFlops(
            None, raw[:MAX_RAW_LENGTH], f"{field}={_shown(raw)} is too long to be a number; treated as unknown"
        )
    match = _TIMES_TEN.match(text)
    try:
        if match:
            mantissa, exponent = match.groups()
            value = float(mantissa) * 10.0 ** int(exponent)
        elif _PLAIN.match(text):
            value = float(text)
        else:
            raise ValueError(text)
    except (ValueError, OverflowError):
        return ParsedFlops(None, raw, f"{field}={_shown(raw)} is not a number; treated as unknown")
    return _check(value, raw, field)


def _fits_float(value: int | float) -> bool:
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _check(value: float, raw: str, field: str) -> ParsedFlops:
    if math.isnan(value):
        return ParsedFlops(None, raw, f"{field}={_shown(raw)} is NaN; treated as unknown")
    if math.isinf(value):
        return ParsedFlops(None, raw, f"{field}={_shown(raw)} is infinite or out of range; treated as unknown")
    if value < 0:
        return ParsedFlops(None, raw, f"{field}={_shown(raw)} is negative; treated as unknown")
    if value == 0:
        return ParsedFlops(None, raw, f"{field}={_shown(raw)} is zero; treated as unknown")
    return ParsedFlops(value, raw)


def check_non_negative(value: float, what: str, error: type[ValueError] = InvalidFlops) -> float:
    """``value`` as a float if it is a finite number >= 0 (not a bool), else raise ``error`` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise error(f"{what} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise error(f"{what} must be a finite number >= 0, got {value!r}")
    return float(value)


ExactNumber = Fraction | int | float | Decimal


def exact(value: ExactNumber) -> Fraction:
    """``value`` as an exact rational, for comparisons that must not depend on binary floating point.

    A float is read as the decimal it prints as (``repr``: the shortest decimal that round-trips), which is
    what a JSON record, a log line or a person reads: ``exact(0.3) == Fraction(3, 10)`` and
    ``exact(1e23) == 10**23``, although the binary values are 0.299999999999999988898 and
    99999999999999991611392. Every float a reader sees therefore compares as the number they see.
    """
    if isinstance(value, bool) or not isinstance(value, Fraction | int | float | Decimal):
        raise InvalidFlops(f"expected a number, got {type(value).__name__}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidFlops(f"expected a finite number, got {value!r}")
        return Fraction(repr(value))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidFlops(f"expected a finite number, got {value!r}")
        return Fraction(value)
    return Fraction(value)


def format_flops(value: float | None) -> str:
    """FLOPs as the style guide prints them: ``3.30e+22`` (``unknown`` for None)."""
    return "unknown" if value is None else f"{value:.2e}"
