"""Raw FLOP counts as users write them, and the bad ones that must stay unknown."""

from __future__ import annotations

import math

import pytest

from flopsmeter.domain.errors import InvalidFlops, InvalidModelSpec
from flopsmeter.domain.numbers import check_non_negative, format_flops, parse_flops

GOOD = {
    "1.5e24": 1.5e24,
    "1.5E+24": 1.5e24,
    " 1500000000000000000000000 ": 1.5e24,
    "1_500e21": 1.5e24,
    "1.5x10^24": 1.5e24,
    "1.5 × 10^24": 1.5e24,
    "1.5*10**24": 1.5e24,
    ".5e24": 5e23,
    "+2e23": 2e23,
}


BAD = [
    "",
    "   ",
    "abc",
    "1.5e24 FLOPs",
    "-1.5e24",
    "0",
    "0.0e0",
    "-0",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "Infinity",
    "1e400",
    "9" * 500,
    "1" * 10_000,
    "1e24; rm -rf /",
    "$(curl evil)",
    "'; DROP TABLE records; --",
    "1e24\n2e24",
    "0x1p80",
    "1,5e24",
    "\x00\x1b[31m",
    "１.５e24",
]


@pytest.mark.parametrize(("raw", "value"), GOOD.items())
def test_parse_accepts_what_people_write(raw: str, value: float) -> None:
    parsed = parse_flops(raw)
    assert parsed.value == pytest.approx(value, rel=1e-12)
    assert parsed.warning is None


@pytest.mark.parametrize("raw", BAD)
def test_bad_pretrain_flops_is_unknown_with_a_warning(raw: str) -> None:
    parsed = parse_flops(raw)
    assert parsed.value is None
    assert parsed.warning and "treated as unknown" in parsed.warning
    assert len(parsed.warning) < 300  # bounded, whatever the input
    assert all(ch.isprintable() for ch in parsed.warning)


@pytest.mark.parametrize("raw", [float("nan"), float("inf"), -1.0, 0, 10**400, True])
def test_non_string_bad_values_are_unknown(raw: object) -> None:
    parsed = parse_flops(raw)  # type: ignore[arg-type]
    assert parsed.value is None and parsed.warning


def test_format_flops() -> None:
    assert format_flops(3.3e22) == "3.30e+22"
    assert format_flops(None) == "unknown"


def test_check_non_negative_names_the_value_and_raises_the_given_error() -> None:
    assert check_non_negative(0, "tokens") == 0.0
    for bad in (-1, math.nan, math.inf, True, "1"):
        with pytest.raises(InvalidFlops, match="tokens"):
            check_non_negative(bad, "tokens")  # type: ignore[arg-type]
    with pytest.raises(InvalidModelSpec):
        check_non_negative(-1, "params", InvalidModelSpec)
