"""Profiling data into sketches in one streaming pass.

A reference is profiled as: exact range and a reservoir sample (DuckDB, parallel) to
place the grid, then one pass counting every row on it. Current data is profiled in
one pass on the reference's grid. Memory depends on the columns and the grid, not on
the rows; partial profiles of files or row ranges merge, which is how the Ray executor
splits the pass.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from conveyor.errors import ValidationError
from conveyor.monitoring.sketch import CategoricalSketch, NumericSketch, Profile, Sketch
from conveyor.monitoring.sources import batches, quote, sample, schema

GRID = 1000


@dataclass(frozen=True)
class Plan:
    """What to count: the grid of each numeric column, the categorical columns, and
    the Arrow type of every column of the input."""

    numeric: dict[str, np.ndarray]
    categorical: tuple[str, ...]
    types: dict[str, str]

    @property
    def columns(self) -> list[str]:
        """Every profiled column, numeric ones first."""
        return [*self.numeric, *self.categorical]

    def projection(self) -> str:
        """SQL selecting the profiled columns as DOUBLE or VARCHAR: one type per kind,
        whatever the input (a number arriving as text is read as a number or a null)."""
        numeric = [f"TRY_CAST({quote(name)} AS DOUBLE) AS {quote(name)}" for name in self.numeric]
        text = [f"CAST({quote(name)} AS VARCHAR) AS {quote(name)}" for name in self.categorical]
        return ", ".join(numeric + text)


def kind_of(data_type: pa.DataType) -> str | None:
    """``numeric``, ``categorical`` or ``None`` (time and nested types are not profiled:
    time always moves on, so its drift says nothing)."""
    if pa.types.is_boolean(data_type) or pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return "categorical"
    if pa.types.is_dictionary(data_type) or pa.types.is_string_view(data_type):
        return "categorical"
    if pa.types.is_integer(data_type) or pa.types.is_floating(data_type) or pa.types.is_decimal(data_type):
        return "numeric"
    return None


def choose_columns(
    types: dict[str, pa.DataType], columns: Sequence[str] | None, categorical: Sequence[str], field: str
) -> tuple[list[str], list[str]]:
    """The numeric and categorical columns to profile.

    Raises:
        ValidationError: a named column is missing or of a type that cannot be profiled.
    """
    missing = [name for name in [*(columns or []), *categorical] if name not in types]
    if missing:
        raise ValidationError(f"no column {', '.join(repr(m) for m in missing)} in the {field} data", field="columns")
    numeric: list[str] = []
    text: list[str] = []
    for name in columns or list(types):
        kind = "categorical" if name in categorical else kind_of(types[name])
        if kind is None and columns:
            raise ValidationError(f"column '{name}' is of type {types[name]}, which drift tests do not read", field="columns")
        (numeric if kind == "numeric" else text if kind == "categorical" else []).append(name)
    return numeric, text


def reference_plan(rel: duckdb.DuckDBPyRelation, numeric: list[str], categorical: list[str],
                   types: dict[str, str], grid: int = GRID) -> Plan:
    """Place each numeric column's grid: its exact minimum and maximum, and the quantiles
    of a reservoir sample between them."""
    edges: dict[str, np.ndarray] = {}
    if numeric:
        casts = ", ".join(f"TRY_CAST({quote(n)} AS DOUBLE) AS {quote(n)}" for n in numeric)
        bounds_sql = ", ".join(f"min({quote(n)}), max({quote(n)})" for n in numeric)
        casted = rel.query("t", f"SELECT {casts} FROM t")
        bounds = casted.query("c", f"SELECT {bounds_sql} FROM c").fetchall()[0]
        drawn = sample(casted, numeric)
        for index, name in enumerate(numeric):
            low, high = bounds[2 * index], bounds[2 * index + 1]
            values = drawn.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
            values = values[np.isfinite(values)]
            if low is None or not len(values):
                edges[name] = np.array([0.0])
                continue
            quantiles = np.quantile(values, np.linspace(0, 1, grid + 1)[1:-1])
            edges[name] = np.unique(np.concatenate([[low], quantiles, [high]]))
    return Plan(numeric=edges, categorical=tuple(categorical), types=types)


def current_plan(reference: Profile, types: dict[str, str]) -> Plan:
    """Count current data on the reference's grid, for the columns both sides have."""
    numeric = {n: s.edges for n, s in reference.columns.items() if isinstance(s, NumericSketch) and n in types}
    categorical = tuple(n for n, s in reference.columns.items() if isinstance(s, CategoricalSketch) and n in types)
    return Plan(numeric=numeric, categorical=categorical, types=types)


def empty_profile(plan: Plan) -> Profile:
    """A profile of no rows under ``plan``."""
    columns: dict[str, Sketch] = {name: NumericSketch.empty(edges) for name, edges in plan.numeric.items()}
    columns.update({name: CategoricalSketch() for name in plan.categorical})
    return Profile(rows=0, columns=columns, types=dict(plan.types))


def accumulate(record_batches: Iterable[pa.RecordBatch], plan: Plan) -> Profile:
    """Count every batch into one profile, a batch's columns on parallel threads
    (sorting and Arrow's kernels release the GIL)."""
    profile = empty_profile(plan)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for batch in record_batches:
            profile.rows += batch.num_rows
            list(pool.map(_count_column, [profile.columns[name] for name in batch.schema.names], batch.columns))
    return profile


def _count_column(sketch: Sketch, column: pa.Array) -> None:
    if isinstance(sketch, NumericSketch):
        sketch.add(column.to_numpy(zero_copy_only=False))
    else:
        _count_levels(sketch, column)


def _count_levels(sketch: CategoricalSketch, column: pa.Array) -> None:
    counted = pc.value_counts(column)
    values = counted.field("values")
    counts = counted.field("counts").to_numpy()
    present = values.is_valid().to_numpy(zero_copy_only=False)
    sketch.add(values.filter(present).to_pylist(), counts[present], column.null_count)


def profile_relation(rel: duckdb.DuckDBPyRelation, plan: Plan) -> Profile:
    """One pass over ``rel`` under ``plan``."""
    if not plan.columns:
        return Profile(rows=int(rel.count("*").fetchall()[0][0]), columns={}, types=dict(plan.types))
    projected = rel.query("t", f"SELECT {plan.projection()} FROM t")
    return accumulate(batches(projected, ()), plan)


def arrow_types(rel: duckdb.DuckDBPyRelation) -> dict[str, pa.DataType]:
    """Column name -> Arrow type."""
    return {f.name: f.type for f in schema(rel)}

