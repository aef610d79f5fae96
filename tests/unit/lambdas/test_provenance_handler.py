"""The provenance function: a launch call stored once; anything else logged and dropped."""

from __future__ import annotations

from flopsmeter.functions.container import ProvenanceContainer
from flopsmeter.functions.provenance import handler_for
from tests.support.fakes import FakeStore
from tests.support.lambda_context import lambda_context
from tests.support.launches import SWEEP, launch_event


def test_the_handler_captures_once_and_drops_what_is_not_a_launch() -> None:
    store = FakeStore()
    handler = handler_for(lambda: ProvenanceContainer(store))  # type: ignore[arg-type]
    event = launch_event("CreateHyperParameterTuningJob", {"hyperParameterTuningJobArn": SWEEP})
    first = handler(event, lambda_context("flopsmeter-provenance"))
    second = handler(event, lambda_context("flopsmeter-provenance"))
    dropped = handler({"detail-type": "Scheduled Event", "detail": {}}, lambda_context("flopsmeter-provenance"))
    assert first["captured"] is True and second["captured"] is False and first["key"] == second["key"]
    assert dropped["captured"] is False and list(store.objects) == [first["key"]]
