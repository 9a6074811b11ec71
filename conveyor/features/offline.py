"""Point-in-time training sets: one DuckDB ASOF join per feature view.

For every entity row, each view contributes its latest row with the same join keys and a
timestamp at or before the entity row's, and only while it is at most ``ttl`` old; later
rows are never seen, so no label leaks from the future. Entity rows keep their count and
order; the ones with no valid match get nulls. DuckDB streams the sources and spills to
disk past its memory limit, so the sizes are not bounded by RAM.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from conveyor.errors import ValidationError
from conveyor.features.definitions import FeatureView
from conveyor.features.dtypes import base_type
from conveyor.features.engine import describe, timestamp_expr, ttl_micros, view_sql
from conveyor.features.sources import SourceContext, quote, sql_string

ROW = "__row"
EVENT_TS = "__ets"
EVENT_TZ = "__etz"
EVENT_NS = "__etn"
# Entity time in the type of each kind of source timestamp column, so the join and the
# pruning compare the source column as stored (no per-row cast of millions of rows).
_ENTITY_TIME = {"TIMESTAMP": (EVENT_TS, "TIMESTAMP"), "TIMESTAMP WITH TIME ZONE": (EVENT_TZ, "TIMESTAMPTZ"),
                "TIMESTAMP_NS": (EVENT_NS, "TIMESTAMP_NS")}
_STRING_KEYS = {"VARCHAR"}


@dataclass(frozen=True)
class ViewRead:
    """The features one retrieval takes from one view version, and their output names."""

    view: FeatureView
    version: int
    join_keys: tuple[str, ...]
    features: tuple[str, ...]
    outputs: tuple[str, ...]


def _key_kind(arrow_type: pa.DataType) -> str | None:
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_string_view(arrow_type):
        return "string"
    return None


def entity_table(entity: pd.DataFrame | pa.Table, timestamp_column: str, keys: set[str]) -> pa.Table:
    """The entity rows as Arrow with only what the join needs: keys, a row number and the
    event time as naive UTC microseconds.

    Raises:
        ValidationError: a join key or the timestamp column is missing or of the wrong type.
    """
    if isinstance(entity, pd.DataFrame):
        missing = [c for c in [*sorted(keys), timestamp_column] if c not in entity.columns]
        if missing:
            raise ValidationError(f"entity_df has no column {missing[0]!r} (columns: {', '.join(map(str, entity.columns))})",
                                  field=missing[0])
        entity = pa.Table.from_pandas(entity[[*sorted(keys), timestamp_column]], preserve_index=False)
    elif not isinstance(entity, pa.Table):
        raise ValidationError(f"entity_df must be a pandas DataFrame or an Arrow table, not {type(entity).__name__}",
                              field="entity_df")
    missing = [c for c in [*sorted(keys), timestamp_column] if c not in entity.column_names]
    if missing:
        raise ValidationError(f"entity_df has no column {missing[0]!r}", field=missing[0])
    columns: dict[str, pa.Array] = {}
    for key in sorted(keys):
        column = entity.column(key)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if _key_kind(column.type) is None:
            raise ValidationError(f"entity_df column {key!r} is {column.type}; join keys must be integers or strings",
                                  field=key)
        columns[key] = column
    stamp = entity.column(timestamp_column)
    if pa.types.is_date(stamp.type):
        stamp = stamp.cast(pa.timestamp("us"))
    if not pa.types.is_timestamp(stamp.type):
        raise ValidationError(f"entity_df column {timestamp_column!r} is {stamp.type}, not a timestamp",
                              field=timestamp_column)
    naive = pc.cast(stamp, pa.timestamp(stamp.type.unit), safe=False)
    columns[EVENT_TS] = pc.cast(naive, pa.timestamp("us"), safe=False)
    columns[EVENT_TZ] = columns[EVENT_TS].cast(pa.timestamp("us", tz="UTC"))
    columns[EVENT_NS] = pc.cast(naive, pa.timestamp("ns"), safe=False)
    columns[ROW] = pa.array(np.arange(entity.num_rows, dtype=np.int64))
    return pa.table(columns)


def _check_key_types(read: ViewRead, source_types: dict[str, str], entity: pa.Table) -> None:
    for key in read.join_keys:
        want = "string" if base_type(source_types[key]) in _STRING_KEYS else "integer"
        have = _key_kind(entity.schema.field(key).type)
        if have != want:
            raise ValidationError(
                f"entity_df column {key!r} holds {have}s but {read.view.label} keys it by {want}s", field=key
            )


def _source_time(column: str, duckdb_type: str) -> tuple[str, str, str]:
    """The source's timestamp expression, and the entity time column and SQL type it compares with."""
    if duckdb_type.upper() in _ENTITY_TIME:
        return (quote(column), *_ENTITY_TIME[duckdb_type.upper()])
    return (timestamp_expr(column, duckdb_type), EVENT_TS, "TIMESTAMP")


def _view_subquery(read: ViewRead, stamp: str, window: tuple[str, str], rows: str, values: list[str]) -> str:
    """The view's rows in the time window: keys, time and ``values`` (features, or a row id)."""
    view = read.view
    columns = [quote(k) for k in read.join_keys] + [f"{stamp} AS __ts"] + values
    lower, upper = window
    conditions = [f"{stamp} <= {upper}"]
    if view.ttl is not None:
        conditions.append(f"{stamp} >= {lower} - to_microseconds({ttl_micros(view)})")
    sql = f"SELECT {', '.join(columns)} FROM {rows} WHERE {' AND '.join(conditions)}"
    if view.created_timestamp_field:
        keys = ", ".join([*(quote(k) for k in read.join_keys), stamp])
        created = quote(view.created_timestamp_field)
        sql += f" QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {created} DESC NULLS LAST) = 1"
    return sql


def _literal(value: Any, sql_type: str) -> str:
    return f"CAST(TIMESTAMP {sql_string(pd.Timestamp(value).isoformat())} AS {sql_type})" if value is not None else "NULL"


def retrieval_sql(reads: list[ViewRead], entity: pa.Table, context: SourceContext, entity_name: str,
                  carried: list[str]) -> str:
    """The ASOF join of every view onto the entity rows, ordered as they came, selecting
    the ``carried`` entity columns (or the row number) and the requested features.

    Where the source can address its rows, the join sorts only keys, times and row ids, and
    the feature values of the matched rows are fetched by id afterwards (less to sort)."""
    stamps = entity.column(EVENT_TS)
    bounds = (pc.min(stamps).as_py(), pc.max(stamps).as_py())
    selected = [f"e.{quote(c)}" for c in carried] or [f"e.{ROW}"]
    joins = []
    for index, read in enumerate(reads):
        alias = f"v{index}"
        source_types = describe(read.view, context)
        _check_key_types(read, source_types, entity)
        stamp, entity_time, sql_type = _source_time(read.view.timestamp_field, source_types[read.view.timestamp_field])
        window = (_literal(bounds[0], sql_type), _literal(bounds[1], sql_type))
        addressed = None if read.view.transform else read.view.source.addressed_sql(context)
        on = " AND ".join([f"e.{quote(k)} = {alias}.{quote(k)}" for k in read.join_keys]
                          + [f"e.{entity_time} >= {alias}.__ts"])
        if addressed is None:
            values, holder = [quote(f) for f in read.features], alias
            rows = view_sql(read.view, context)
            joins.append(f"ASOF LEFT JOIN ({_view_subquery(read, stamp, window, rows, values)}) {alias} ON {on}")
        else:
            holder = f"f{index}"
            joins.append(f"ASOF LEFT JOIN ({_view_subquery(read, stamp, window, addressed, ['__rid'])}) {alias} ON {on}")
            fetched = ", ".join(["__rid", *(quote(f) for f in read.features)])
            joins.append(f"LEFT JOIN (SELECT {fetched} FROM {addressed}) {holder} ON {holder}.__rid = {alias}.__rid")
        ttl = ttl_micros(read.view)
        valid = f"{alias}.__ts >= e.{entity_time} - to_microseconds({ttl})" if ttl is not None else None
        for feature, output in zip(read.features, read.outputs):
            value = f"{holder}.{quote(feature)}"
            selected.append(f"CASE WHEN {valid} THEN {value} END AS {quote(output)}" if valid else f"{value} AS {quote(output)}")
    return f"SELECT {', '.join(selected)} FROM {entity_name} e {' '.join(joins)} ORDER BY e.{ROW}"


class RetrievalJob:
    """A point-in-time training set, computed when asked for in one of its forms."""

    def __init__(self, context: SourceContext, reads: list[ViewRead], entity: pd.DataFrame | pa.Table,
                 timestamp_column: str, service: str | None = None) -> None:
        self.context = context
        self.service = service
        self.reads = reads
        self.entity = entity
        self.timestamp_column = timestamp_column
        keys = {k for read in reads for k in read.join_keys}
        self._keys = entity_table(entity, timestamp_column, keys)
        self.outputs = [name for read in reads for name in read.outputs]

    @property
    def rows(self) -> int:
        """How many rows the training set has: one per entity row."""
        return self._keys.num_rows

    @contextlib.contextmanager
    def _query(self, with_entity_columns: bool) -> Iterator[str]:
        """The training set's SQL, with the entity rows registered for it: only the join columns,
        or every entity column too (for outputs DuckDB writes or streams itself)."""
        table, carried = self._keys, []
        if with_entity_columns:
            entity = self.entity if isinstance(self.entity, pa.Table) else pa.Table.from_pandas(self.entity, preserve_index=False)
            carried = entity.column_names
            table = entity
            for name in (EVENT_TS, EVENT_TZ, EVENT_NS, ROW):
                table = table.append_column(name, self._keys.column(name))
        name = f"__entity_{id(self):x}"
        self.context.con.register(name, table)
        try:
            yield retrieval_sql(self.reads, self._keys, self.context, name, carried)
        except duckdb.Error as error:
            raise ValidationError(f"training set query failed: {str(error).splitlines()[0]}", field="features") from error
        finally:
            self.context.con.unregister(name)

    def _features(self) -> pa.Table:
        with self._query(with_entity_columns=False) as sql:
            return self.context.con.sql(sql).to_arrow_table().drop_columns([ROW])

    def to_arrow(self) -> pa.Table:
        """Entity columns followed by the features, as an Arrow table."""
        features = self._features()
        entity = self.entity if isinstance(self.entity, pa.Table) else pa.Table.from_pandas(self.entity, preserve_index=False)
        for name in features.column_names:
            entity = entity.append_column(name, features.column(name))
        return entity

    def to_df(self) -> pd.DataFrame:
        """Entity columns (unchanged, same index) followed by the features, as pandas."""
        features = self._features().to_pandas()
        entity = self.entity if isinstance(self.entity, pd.DataFrame) else self.entity.to_pandas()
        features.index = entity.index
        return pd.concat([entity, features], axis=1)

    def to_parquet(self, path: str | Path) -> Path:
        """Write the training set to a Parquet file as DuckDB computes it (spilling, not holding it); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._query(with_entity_columns=True) as sql:
            self.context.con.execute(f"COPY ({sql}) TO {sql_string(str(path))} (FORMAT parquet)")
        return path

    def to_batches(self, rows_per_batch: int = 100_000) -> Iterator[pa.RecordBatch]:
        """The training set in record batches as DuckDB computes them, for consumers that stream."""
        with self._query(with_entity_columns=True) as sql:
            yield from self.context.con.sql(sql).to_arrow_reader(rows_per_batch)
