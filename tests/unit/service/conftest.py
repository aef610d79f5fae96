"""Fixtures of the classifier service's unit tests: fakes for every dependency, a fixed clock."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from flopsmeter.service.classifier import Dependencies, ServiceConfig
from tests.unit.service.fakes import END, FakeJobs, FakeMeter, FakeMetrics, FakePublisher, FakeStore, FakeTrail


class World:
    def __init__(self) -> None:
        self.jobs, self.meter, self.trail = FakeJobs(), FakeMeter(), FakeTrail()
        self.store, self.publisher, self.metrics = FakeStore(), FakePublisher(), FakeMetrics()
        self.now = END + timedelta(minutes=20)
        self.config = ServiceConfig(cloudtrail_max_wait_seconds=3600, parent_max_wait_seconds=3600)
        self.deps = Dependencies(
            jobs=self.jobs,
            meter=self.meter,
            trail=self.trail,
            store=self.store,
            publisher=self.publisher,
            metrics=self.metrics,
            log=logging.getLogger("flopsmeter.test"),
            clock=lambda: self.now,
        )


@pytest.fixture
def world() -> World:
    return World()
