"""The feature value types a definition may declare, and how they meet the data.

A declared type must agree with the column the source gives: the same kind (integer,
floating, string, boolean, timestamp), where a narrower integer or float may widen. A
float column declared as an integer, or a string declared as a number, is a mismatch
that ``apply`` refuses rather than a cast that silently loses values.
"""

from __future__ import annotations

from typing import Literal, get_args

import pyarrow as pa

Dtype = Literal["int64", "int32", "float64", "float32", "string", "bool", "timestamp"]
DTYPES: tuple[str, ...] = get_args(Dtype)

DUCKDB_TYPES: dict[str, str] = {
    "int64": "BIGINT",
    "int32": "INTEGER",
    "float64": "DOUBLE",
    "float32": "FLOAT",
    "string": "VARCHAR",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMP",
}

ARROW_TYPES: dict[str, pa.DataType] = {
    "int64": pa.int64(),
    "int32": pa.int32(),
    "float64": pa.float64(),
    "float32": pa.float32(),
    "string": pa.string(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us"),
}

_INTEGERS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "HUGEINT", "UBIGINT"}
_NARROW_INTEGERS = {"TINYINT", "SMALLINT", "INTEGER", "UTINYINT", "USMALLINT"}
_FLOATS = {"FLOAT", "DOUBLE"}
_TIMESTAMPS = {"TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATE"}
_STRINGS = {"VARCHAR"}
_ACCEPTS: dict[str, set[str]] = {
    "int64": _INTEGERS - {"HUGEINT", "UBIGINT"},
    "int32": _NARROW_INTEGERS,
    "float64": _FLOATS | _INTEGERS | {"DECIMAL"},
    "float32": _FLOATS | _NARROW_INTEGERS,
    "string": _STRINGS,
    "bool": {"BOOLEAN"},
    "timestamp": _TIMESTAMPS,
}


def base_type(duckdb_type: str) -> str:
    """``DECIMAL(18,3)`` -> ``DECIMAL``; ``VARCHAR`` stays."""
    return duckdb_type.split("(")[0].strip().upper()


def accepts(declared: str, duckdb_type: str) -> bool:
    """Whether a source column of ``duckdb_type`` may serve a feature declared ``declared``."""
    return base_type(duckdb_type) in _ACCEPTS[declared]


def is_timestamp(duckdb_type: str) -> bool:
    """Whether a source column can be an event or created timestamp."""
    return base_type(duckdb_type) in _TIMESTAMPS
