"""Fixtures of the classifier service's unit tests: every dependency faked, a fixed clock."""

from __future__ import annotations

import pytest

from tests.support.fakes import World


@pytest.fixture
def world() -> World:
    return World()
