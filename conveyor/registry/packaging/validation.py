"""Checking a frame against a signature's inputs and converting it to their dtypes.

Every check is vectorised (no per-row Python): the frame is reindexed to the signature's
columns once, a column whose dtype already matches costs one dtype comparison, and one
``isna`` pass over the result finds missing values. Rules, per column:

- Category and string columns with levels accept only those values (and missing ones
  where nullable): the levels are the closed set seen when the signature was inferred.
- ``error`` mode accepts only lossless conversions of the same kind (``int32`` -> ``int64``,
  ``float32`` -> ``float64``, ``object`` strings -> ``str``, another unit of datetime) and
  category <-> string: strings become categories, and categories with string labels
  become strings, when every value is a known level.
- ``coerce`` mode also casts int and bool -> float, bool -> int, float -> int when every
  value is integral, and ISO 8601 strings -> datetime. Everything else is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from conveyor.errors import ValidationError
from conveyor.registry.packaging.kinds import LogicalType, column_kind, numpy_dtype

if TYPE_CHECKING:
    from conveyor.registry.packaging.signature import ColumnSpec

Mode = Literal["error", "coerce"]
Column = pd.Series | np.ndarray  # a converted column, as DataFrame.isetitem takes it
Converter = Callable[[pd.Series, "ColumnSpec", Any], Column]
_EXAMPLES = 3
_SMALL_FRAME = 64


def conform(specs: Sequence[ColumnSpec], dtypes: Sequence[Any], frame: pd.DataFrame, mode: Mode) -> pd.DataFrame:
    """``frame`` reduced to the ``specs`` columns, in order, converted to ``dtypes``.

    Raises:
        ValidationError: the frame does not fit; ``field`` names the (first) column at fault.
    """
    if mode not in ("error", "coerce"):
        raise ValidationError(f"schema mode must be 'error' or 'coerce', got {mode!r}", field="mode")
    if not isinstance(frame, pd.DataFrame):
        raise ValidationError(f"a model predicts on a DataFrame, got {type(frame).__name__}", field="frame")
    names = [spec.name for spec in specs]
    out = _select(frame, names)
    for position, (spec, dtype, seen) in enumerate(zip(specs, dtypes, out.dtypes, strict=True)):
        if seen != dtype:
            out.isetitem(position, _convert(out[spec.name], spec, dtype, mode))
        if spec.type == "string" and spec.levels is not None:
            _check_levels(out[spec.name], spec)
    _check_present(out, specs)
    return out


def _select(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """A new frame of exactly the ``names`` columns, in that order."""
    present = frame.columns
    missing = [name for name in names if name not in present]
    if missing:
        listed = ", ".join(repr(name) for name in missing)
        raise ValidationError(f"the frame lacks column(s) {listed} that the model reads", field=missing[0])
    if not present.is_unique:
        repeated = [name for name in names if isinstance(frame[name], pd.DataFrame)]
        if repeated:
            raise ValidationError(f"column {repeated[0]!r} appears more than once in the frame", field=repeated[0])
        frame = frame.loc[:, ~present.duplicated()]
    return frame.reindex(columns=names)


def _check_present(frame: pd.DataFrame, specs: Sequence[ColumnSpec]) -> None:
    """Refuse missing values in the columns that are not nullable, counting them."""
    required = [position for position, spec in enumerate(specs) if not spec.nullable]
    if not required:
        return
    has_missing = frame.isna().to_numpy().any(axis=0)
    for position in required:
        if has_missing[position]:
            name = specs[position].name
            count = int(frame[name].isna().sum())
            raise ValidationError(
                f"column {name!r} has {count} missing value(s); the model does not accept missing values there",
                field=name,
            )


def _check_levels(series: pd.Series, spec: ColumnSpec) -> None:
    """Refuse values outside a string column's levels (missing values are no level).

    A few rows (online scoring) are checked against a Python set: the vectorised
    ``isin`` costs more in setup than it saves below ``_SMALL_FRAME`` rows.
    """
    if len(series) <= _SMALL_FRAME:
        known = set(spec.levels or ())
        unseen = np.array([not (value in known or pd.isna(value)) for value in series.tolist()], dtype=bool)
    else:
        values = series.array
        unseen = ~values.isin(spec.levels) & ~values.isna()
    if unseen.any():
        raise _unseen(series, spec, unseen)


def _unseen(series: pd.Series, spec: ColumnSpec, unseen: np.ndarray) -> ValidationError:
    examples = ", ".join(repr(value) for value in pd.unique(series[unseen])[:_EXAMPLES])
    return ValidationError(
        f"column {spec.name!r} has {int(unseen.sum())} value(s) outside the levels the model knows, e.g. {examples}",
        field=spec.name,
    )


def _convert(series: pd.Series, spec: ColumnSpec, dtype: Any, mode: Mode) -> Column:
    kind = column_kind(series)
    if spec.type == "category" and kind in ("category", "string"):
        return _to_category(series, spec, dtype)
    if kind == spec.type:
        return _same_kind(series, spec, dtype)
    if (kind, spec.type) == ("category", "string"):
        return _category_to_string(series, spec, dtype)
    coercion = _COERCIONS.get((kind, spec.type))
    if coercion is not None and mode == "coerce":
        return coercion(series, spec, dtype)
    hint = "; pass schema mode 'coerce' to convert it" if coercion is not None else ""
    raise _wrong_type(series, spec, kind, hint)


def _wrong_type(series: pd.Series, spec: ColumnSpec, kind: LogicalType | None, hint: str = "") -> ValidationError:
    seen = f"{kind} values" if kind else "values"
    return ValidationError(
        f"column {spec.name!r} has {seen} of dtype {series.dtype}; the model expects {spec.type} ({spec.dtype}){hint}",
        field=spec.name,
    )


def _cast(series: pd.Series, spec: ColumnSpec, dtype: Any) -> Column:
    """``series`` as ``dtype``; callers have already ruled out lossy casts.

    Between plain numpy numbers and booleans it casts the bare array, which skips most
    of pandas's per-call overhead.
    """
    if numpy_dtype(series.dtype) is series.dtype and numpy_dtype(dtype) is dtype:
        return series.to_numpy().astype(dtype)
    return _astype(series, spec, dtype)


def _astype(series: pd.Series, spec: ColumnSpec, dtype: Any) -> pd.Series:
    """``series.astype(dtype)``, with the library's complaint turned into a ValidationError."""
    try:
        return series.astype(dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValidationError(f"column {spec.name!r} cannot become {spec.dtype}: {reason}", field=spec.name) from exc


def _same_kind(series: pd.Series, spec: ColumnSpec, dtype: Any) -> Column:
    source, target = numpy_dtype(series.dtype), numpy_dtype(dtype)
    if source is not None and target is not None and not np.can_cast(source, target, casting="safe"):
        raise ValidationError(
            f"column {spec.name!r} has dtype {series.dtype}; converting it to {spec.dtype} could lose values",
            field=spec.name,
        )
    if spec.type == "datetime":
        _check_timezone(series, spec, dtype)
    return _cast(series, spec, dtype)


def _check_timezone(series: pd.Series, spec: ColumnSpec, dtype: Any) -> None:
    if (getattr(series.dtype, "tz", None) is None) != (getattr(dtype, "tz", None) is None):
        raise ValidationError(
            f"column {spec.name!r} has dtype {series.dtype}; the model expects {spec.dtype} "
            "(time zone aware and naive datetimes do not mix)",
            field=spec.name,
        )


def _to_category(series: pd.Series, spec: ColumnSpec, dtype: Any) -> Column:
    if spec.levels is None:
        return series if isinstance(series.dtype, pd.CategoricalDtype) else _astype(series, spec, dtype)
    if isinstance(series.dtype, pd.CategoricalDtype):
        recoded = series.cat.set_categories(dtype.categories)
    else:
        recoded = _astype(series, spec, dtype)
    unseen = recoded.isna().to_numpy() & series.notna().to_numpy()
    if unseen.any():
        raise _unseen(series, spec, unseen)
    return recoded if recoded.dtype == dtype else _astype(recoded, spec, dtype)


def _category_to_string(series: pd.Series, spec: ColumnSpec, dtype: Any) -> Column:
    if ptypes.infer_dtype(series.cat.categories, skipna=True) != "string":
        raise _wrong_type(series, spec, "category")
    return _astype(series, spec, dtype)


def _float_to_integer(series: pd.Series, spec: ColumnSpec, dtype: Any) -> Column:
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isnan(values).any():
        raise ValidationError(f"column {spec.name!r} has missing values and cannot become {spec.dtype}", field=spec.name)
    fractional = values != np.trunc(values)
    if fractional.any():
        examples = ", ".join(repr(value) for value in values[fractional][:_EXAMPLES].tolist())
        raise ValidationError(
            f"column {spec.name!r} has non-integral values ({examples}) and cannot become {spec.dtype}",
            field=spec.name,
        )
    bounds = np.iinfo(numpy_dtype(dtype))
    if values.size and (values.min() < bounds.min or values.max() >= float(bounds.max) + 1):
        raise ValidationError(f"column {spec.name!r} has values out of the range of {spec.dtype}", field=spec.name)
    return _cast(series, spec, dtype)


def _string_to_datetime(series: pd.Series, spec: ColumnSpec, dtype: Any) -> Column:
    aware = getattr(dtype, "tz", None) is not None
    try:
        parsed = pd.to_datetime(series, format="ISO8601", utc=aware)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"column {spec.name!r} has strings that are not ISO 8601 datetimes ({str(exc).splitlines()[0]})",
            field=spec.name,
        ) from exc
    _check_timezone(parsed, spec, dtype)
    return _astype(parsed, spec, dtype)


_COERCIONS: dict[tuple[LogicalType | None, LogicalType], Converter] = {
    ("integer", "float"): _cast,
    ("boolean", "float"): _cast,
    ("boolean", "integer"): _cast,
    ("float", "integer"): _float_to_integer,
    ("string", "datetime"): _string_to_datetime,
}
