"""Logical column types: the small vocabulary a signature speaks, read from pandas dtypes.

A signature records both the logical type (``integer``, ``float``, ...) and the exact
pandas dtype seen at training time. The logical type decides which conversions are
allowed at prediction time; the dtype is what the model gets.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from conveyor.errors import ValidationError

LogicalType = Literal["integer", "float", "boolean", "string", "category", "datetime"]
Scalar = str | int | float | bool

# pandas.api.types.infer_dtype results for object columns, as logical types.
_OBJECT_KINDS: dict[str, LogicalType] = {
    "string": "string",
    "empty": "string",
    "boolean": "boolean",
    "integer": "integer",
    "floating": "float",
    "mixed-integer-float": "float",
    "datetime": "datetime",
    "datetime64": "datetime",
}


def dtype_kind(dtype: Any) -> LogicalType | None:
    """The logical type every column of ``dtype`` holds; None for ``object`` or unsupported dtypes."""
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if ptypes.is_bool_dtype(dtype):
        return "boolean"
    if ptypes.is_integer_dtype(dtype):
        return "integer"
    if ptypes.is_float_dtype(dtype):
        return "float"
    if ptypes.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.StringDtype):
        return "string"
    return None


def column_kind(series: pd.Series) -> LogicalType | None:
    """The logical type of a column, looking at the values only for ``object`` columns."""
    kind = dtype_kind(series.dtype)
    if kind is None and series.dtype == object:
        return _OBJECT_KINDS.get(ptypes.infer_dtype(series, skipna=True))
    return kind


def numpy_dtype(dtype: Any) -> np.dtype | None:
    """The numpy dtype behind a number or boolean dtype (``Int64`` -> ``int64``); None for others."""
    inner = dtype if isinstance(dtype, np.dtype) else getattr(dtype, "numpy_dtype", None)
    return inner if isinstance(inner, np.dtype) and inner.kind in "biuf" else None


def parse_dtype(text: str, levels: list[Scalar] | None = None) -> Any:
    """The pandas dtype named by ``text``; ``category`` gets ``levels`` as its categories.

    Raises:
        ValidationError: ``text`` names no pandas dtype.
    """
    if text == "category":
        return pd.CategoricalDtype(levels)
    try:
        return ptypes.pandas_dtype(text)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{text!r} is not a pandas dtype", field="dtype") from exc


def json_scalars(values: Any, what: str, field: str) -> list[Scalar]:
    """``values`` as plain JSON-safe Python scalars (numpy scalars are unwrapped).

    Raises:
        ValidationError: a value is not a string, number or boolean.
    """
    items = values.tolist() if hasattr(values, "tolist") else values
    plain = [value.item() if isinstance(value, np.generic) else value for value in items]
    for value in plain:
        if not isinstance(value, (str, bool, int, float)):
            raise ValidationError(
                f"{what} must be strings, numbers or booleans; got {type(value).__name__}", field=field
            )
    return plain
