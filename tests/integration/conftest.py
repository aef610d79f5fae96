"""Integration fixtures: the ``aws`` world on moto (tests.support.moto_world)."""

from __future__ import annotations

from tests.support.moto_world import _clients, aws  # noqa: F401 - fixtures used by the tests here
