"""The figures the README and docs/infra.md quote about the deployed stack (KMS keys, alarms, what they cost at
rest) are the synthesized template's: a change to the stack that adds a key or an alarm fails here until the docs
say so."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.infra.template import Synthesized

pytestmark = pytest.mark.infra

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
INFRA = (REPO / "docs" / "infra.md").read_text(encoding="utf-8")
KMS_KEY_PRICE, ALARM_PRICE = 1.0, 0.10  # USD per month (us-east-1 / eu-west-1 list prices)


def _counts(synth: Synthesized) -> tuple[int, int]:
    return len(synth.of_type("AWS::KMS::Key")), len(synth.of_type("AWS::CloudWatch::Alarm"))


def test_the_readme_names_the_templates_keys_and_alarms(synth: Synthesized) -> None:
    keys, alarms = _counts(synth)
    quoted = re.search(r"mostly the (\d+) KMS keys and the (\d+) alarms", README)
    assert quoted, "README: 'mostly the N KMS keys and the M alarms' (Deploy and destroy)"
    assert (int(quoted[1]), int(quoted[2])) == (keys, alarms)


def test_the_cost_table_counts_and_prices_the_templates_keys_and_alarms(synth: Synthesized) -> None:
    keys, alarms = _counts(synth)
    key_row = re.search(r"^\| (\d+) KMS keys .*? \| \$(\d+) \(first year\)", INFRA, re.MULTILINE)
    alarm_row = re.search(r"^\| (\d+) CloudWatch alarms at \$([0-9.]+) \| \$([0-9.]+) \|", INFRA, re.MULTILINE)
    assert key_row and alarm_row, "docs/infra.md: the rows of 'What it costs at rest'"
    assert (int(key_row[1]), float(key_row[2])) == (keys, keys * KMS_KEY_PRICE)
    assert (int(alarm_row[1]), float(alarm_row[2])) == (alarms, ALARM_PRICE)
    assert float(alarm_row[3]) == pytest.approx(alarms * ALARM_PRICE)
