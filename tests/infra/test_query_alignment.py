"""The Glue table (Athena) and the DuckDB view expose the same columns, so one SQL text runs on both."""

from __future__ import annotations

import re

from flopsmeter.compliance import query
from infra.constructs.query import PARTITION_KEYS
from infra.glue_schema import record_columns as glue_columns

_EQUIVALENT = {"double": "DOUBLE", "string": "VARCHAR", "bigint": "BIGINT", "boolean": "BOOLEAN"}


def _leaf_types(type_text: str) -> list[str]:
    """Scalar type names in a nested type string, lowercased, in order (struct/array field types)."""
    words = re.findall(r"[A-Za-z]+", type_text)
    keep = {"double", "string", "varchar", "bigint", "boolean", "timestamp", "int", "integer"}
    return [w.lower() for w in words if w.lower() in keep]


def test_glue_table_and_duckdb_view_have_the_same_top_level_columns():
    glue = [name for name, _ in glue_columns()]
    duck = list(query.record_columns())
    assert glue == duck
    assert tuple(query.PARTITION_COLUMNS) == PARTITION_KEYS


def test_flop_counts_are_double_on_both_engines():
    glue = dict(glue_columns())
    duck = query.record_columns()
    for column in ("flops", "lineage", "classifications"):
        glue_leaves = [t for t in _leaf_types(glue[column]) if t == "double"]
        duck_leaves = [t for t in _leaf_types(duck[column]) if t == "double"]
        assert glue_leaves, column
        assert len(glue_leaves) == len(duck_leaves), column
