"""EventBridge: moto's default target input leaves out the envelope's ``account``; EventBridge always sends it."""

from __future__ import annotations


def patch() -> None:
    """moto's default target input drops the envelope's ``account``; EventBridge always sends it."""
    from moto.events.utils import EventTemplateParser

    template = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    if '"account"' not in template:
        EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = template.replace(
            '"version": "0", ', '"version": "0", "account": "<account>", '
        )
