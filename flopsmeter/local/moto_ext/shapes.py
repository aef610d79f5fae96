"""Emulator responses shaped by botocore's own service model (issue 26): only the members an operation's output
shape defines, every required member present, timestamps as the protocol writes them (JSON: epoch seconds). A new
API the emulator serves is built from the model the real client parses, so a field the model lacks never appears
and a missing required one fails loudly."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flopsmeter.local.moto_ext.common import EmulatorError


@functools.cache
def _service_model(service: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def output_shape(service: str, operation: str) -> Any:
    return _service_model(service).operation_model(operation).output_shape


def shaped(service: str, operation: str, value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` cut to ``operation``'s output shape (JSON-ready), or ``EmulatorError`` naming a missing member."""
    shape = output_shape(service, operation)
    return _structure(shape, value, operation) if shape is not None else {}


def shaped_as(service: str, shape_name: str, value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` cut to the named structure shape (e.g. an event detail that resembles an output)."""
    return _structure(_service_model(service).shape_for(shape_name), value, shape_name)


def _structure(shape: Any, value: Mapping[str, Any], where: str) -> dict[str, Any]:
    missing = [name for name in shape.required_members if value.get(name) is None]
    if missing:
        raise EmulatorError(f"{where}: required member(s) {', '.join(missing)} missing")
    out: dict[str, Any] = {}
    for name, member in shape.members.items():
        if value.get(name) is not None:
            out[name] = _value(member, value[name], f"{where}.{name}")
    return out


def _value(shape: Any, value: Any, where: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        return _structure(shape, value, where)
    if kind == "list":
        return [_value(shape.member, item, where) for item in value]
    if kind == "map":
        return {str(k): _value(shape.value, v, where) for k, v in value.items()}
    if kind == "timestamp":
        moment = value if isinstance(value, datetime) else datetime.fromtimestamp(float(value), UTC)
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    if kind == "string" and shape.enum and value not in shape.enum:
        raise EmulatorError(f"{where}: {value!r} is not one of {', '.join(shape.enum)}")
    return value
