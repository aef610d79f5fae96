"""Reliability fixtures: the real classifier function on moto (tests.support.harness, tests.support.moto_world)."""

from __future__ import annotations

from tests.support.harness import _production_clients, harness  # noqa: F401 - fixtures used by the tests here
from tests.support.moto_world import _clients, aws  # noqa: F401 - fixtures used by the harness
