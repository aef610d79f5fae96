"""Reference formulas: 6·N·D and the AWS sample formula."""

from __future__ import annotations

import pytest

from flopsmeter.domain.errors import InvalidModelSpec
from flopsmeter.domain.reference import aws_sample_flops, six_nd_flops


def test_six_nd_and_aws_sample_formulas() -> None:
    assert six_nd_flops(8e9, 1e6) == 4.8e16
    assert aws_sample_flops(8e9, 8e9, 1e6) == 4.8e16
    assert aws_sample_flops(8e9, 0, 1e6) == 3.2e16
    with pytest.raises(InvalidModelSpec):
        six_nd_flops(-1, 1)
