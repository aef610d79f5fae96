"""Raw PRETRAIN_FLOPS strings as users write them, and the bad ones that must stay conservative."""

from __future__ import annotations

import pytest

from flopsmeter.domain.classification import classify
from flopsmeter.domain.numbers import format_flops, parse_flops
from flopsmeter.domain.pretrain import PretrainSource, resolve_pretrain_compute
from flopsmeter.domain.thresholds import Scenario

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


@pytest.mark.parametrize("raw", BAD)
def test_bad_pretrain_flops_never_makes_classification_less_conservative(raw: str) -> None:
    # Given a base model whose catalog compute is known (a larger threshold) and a bad declared value
    resolved = resolve_pretrain_compute(environment_value=raw, base_model_id="meta-llama/Meta-Llama-3-70B")
    # Then the declared value is unknown, it does not fall through to the catalog, and a warning says why
    assert resolved.flops is None
    assert resolved.source is PretrainSource.UNKNOWN
    assert resolved.warnings
    result = classify(3.0e22, resolved.flops, warnings=resolved.warnings)
    assert result.primary.scenario is Scenario.DEFAULT
    assert result.primary.threshold == 3.3e22
    assert result.warnings == resolved.warnings


@pytest.mark.parametrize("raw", [float("nan"), float("inf"), -1.0, 0, 10**400, True])
def test_non_string_bad_values_are_unknown(raw: object) -> None:
    parsed = parse_flops(raw)  # type: ignore[arg-type]
    assert parsed.value is None and parsed.warning


def test_argument_beats_environment_beats_tag_beats_catalog() -> None:
    assert resolve_pretrain_compute(argument_value="2e24", environment_value="3e24", tag_value="4e24").flops == 2e24
    assert resolve_pretrain_compute(environment_value="3e24", tag_value="4e24").source is PretrainSource.ENVIRONMENT
    assert resolve_pretrain_compute(tag_value="4e24", base_model_id="llama-3-70b").source is PretrainSource.TAG
    unknown = resolve_pretrain_compute(base_model_id="some/unknown-model")
    assert unknown.flops is None and unknown.source is PretrainSource.UNKNOWN


def test_format_flops() -> None:
    assert format_flops(3.3e22) == "3.30e+22"
    assert format_flops(None) == "unknown"
