"""The data a check reads: DataFrames, Arrow tables, Parquet/CSV paths (globs too) or
DuckDB relations, opened as relations so every input streams as Arrow batches in bounded memory."""

from __future__ import annotations

import glob
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from conveyor.errors import ValidationError

BATCH_ROWS = 262_144
SAMPLE_ROWS = 100_000


def expand_paths(data: str | Path, field: str) -> list[str]:
    """The files a path or glob names, sorted; a clear error when there are none."""
    text = str(data)
    paths = sorted(glob.glob(text, recursive=True)) if any(c in text for c in "*?[") else [text]
    if not paths or not all(Path(p).is_file() for p in paths):
        raise ValidationError(f"{text}: no such file", field=field)
    for path in paths:
        if not path.endswith((".parquet", ".pq", ".csv", ".csv.gz")):
            raise ValidationError(f"{path}: expected a .parquet or .csv file", field=field)
    return paths


def relation(con: duckdb.DuckDBPyConnection, data: Any, field: str) -> duckdb.DuckDBPyRelation:
    """``data`` as a relation of ``con``.

    Raises:
        ValidationError: ``data`` is of another type, or names no readable file.
    """
    if isinstance(data, duckdb.DuckDBPyRelation):
        return data
    if isinstance(data, pd.DataFrame):
        return con.from_arrow(pa.Table.from_pandas(data, preserve_index=False))
    if isinstance(data, pa.Table | pa.RecordBatch):
        return con.from_arrow(data)
    if isinstance(data, str | Path):
        paths = expand_paths(data, field)
        try:
            if paths[0].endswith((".csv", ".csv.gz")):
                return con.read_csv(paths)
            return con.read_parquet(paths, union_by_name=True)
        except duckdb.Error as error:
            raise ValidationError(f"{data}: cannot be read ({str(error).splitlines()[0]})", field=field) from error
    raise ValidationError(
        f"expected a DataFrame, an Arrow table or a Parquet/CSV path, got {type(data).__name__}", field=field
    )


def schema(rel: duckdb.DuckDBPyRelation) -> pa.Schema:
    """The Arrow schema of a relation, without reading its rows."""
    return rel.limit(0).to_arrow_table().schema


def batches(rel: duckdb.DuckDBPyRelation, columns: Sequence[str], batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """The relation's ``columns`` as a stream of Arrow record batches."""
    projected = rel.select(*[duckdb.ColumnExpression(name) for name in columns]) if columns else rel
    yield from projected.to_arrow_reader(batch_rows)


def sample(rel: duckdb.DuckDBPyRelation, columns: Sequence[str], rows: int = SAMPLE_ROWS, seed: int = 7) -> pa.Table:
    """A reservoir sample of up to ``rows`` rows of ``columns``: the whole input when smaller."""
    if not columns:
        return pa.table({})
    selected = ", ".join(quote(name) for name in columns)
    return rel.query("t", f"SELECT {selected} FROM t USING SAMPLE reservoir({rows} ROWS) REPEATABLE ({seed})").to_arrow_table()


def quote(name: str) -> str:
    """A column name as a DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'
