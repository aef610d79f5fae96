"""Glue/Athena column types derived from the audit record model, so the table follows ``AuditRecord``.

Mapping: ``float`` (FLOP counts, ratios) -> ``double`` (FLOPs reach 1e25 and overflow ``bigint``),
``int`` -> ``bigint``, ``bool`` -> ``boolean``, ``str``/``Literal[str]``/``datetime`` -> ``string``
(ISO 8601 text as pydantic writes it; query with ``from_iso8601_timestamp``), ``list[X]`` -> ``array<X>``,
``dict[K, V]`` -> ``map<K,V>``,
nested models -> ``struct<...>``. ``Optional[X]`` is ``X`` (absent or null JSON reads as NULL).
"""

from __future__ import annotations

import datetime as dt
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from flopsmeter.audit.record import AuditRecord

_SCALARS: dict[Any, str] = {
    float: "double",
    int: "bigint",
    bool: "boolean",
    str: "string",
    dt.datetime: "string",
    dt.date: "string",
}


def glue_type(annotation: Any) -> str:
    """The Glue (Hive) type string for a pydantic field annotation."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return glue_type(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) != 1:
            raise TypeError(f"no single Glue type for the union {annotation!r}")
        return glue_type(members[0])
    if origin is Literal:
        kinds = {type(v) for v in get_args(annotation)}
        if len(kinds) != 1:
            raise TypeError(f"mixed literal types in {annotation!r}")
        return glue_type(kinds.pop())
    if origin is list:
        (item,) = get_args(annotation)
        return f"array<{glue_type(item)}>"
    if origin is dict:
        key, value = get_args(annotation)
        return f"map<{glue_type(key)},{glue_type(value)}>"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        inner = ",".join(f"{name}:{glue_type(f.annotation)}" for name, f in annotation.model_fields.items())
        return f"struct<{inner}>"
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    raise TypeError(f"no Glue type for {annotation!r}")


def record_columns(model: type[BaseModel] = AuditRecord) -> list[tuple[str, str]]:
    """``(name, glue type)`` for every top-level field of the record, in model order."""
    return [(name, glue_type(field.annotation)) for name, field in model.model_fields.items()]
