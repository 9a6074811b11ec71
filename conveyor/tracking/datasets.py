"""Describing a dataset a run consumed: content hash, schema, rows, source."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from conveyor.core.artifacts import sha256_file
from conveyor.errors import ValidationError


@dataclass(frozen=True)
class DatasetDescription:
    """What identifies a dataset's content and shape."""

    digest: str
    schema: list[dict[str, Any]]
    rows: int | None
    source: str

    @property
    def data_schema(self) -> str:
        """The schema as compact JSON, as stored."""
        return json.dumps(self.schema, separators=(",", ":"))


def _frame_schema(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {"name": str(name), "dtype": str(dtype), "nullable": bool(frame[name].isna().any())}
        for name, dtype in frame.dtypes.items()
    ]


def _arrow_schema(schema: pa.Schema) -> list[dict[str, Any]]:
    return [{"name": field.name, "dtype": str(field.type), "nullable": field.nullable} for field in schema]


def describe_frame(frame: pd.DataFrame, source: str | None = None) -> DatasetDescription:
    """Hash a DataFrame by its values and column names/dtypes (the index is ignored)."""
    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return DatasetDescription(digest.hexdigest(), _frame_schema(frame), len(frame), source or "dataframe")


def describe_path(path: str | Path) -> DatasetDescription:
    """Hash a file or a folder of files; read schema and row count from Parquet or CSV."""
    path = Path(path)
    if not path.exists():
        raise ValidationError(f"dataset path {str(path)!r} does not exist", field="data")
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        digest.update(sha256_file(file)[0].encode())
    schema: list[dict[str, Any]] = []
    rows: int | None = None
    suffix = path.suffix.lower()
    if suffix == ".parquet" or (path.is_dir() and any(f.suffix == ".parquet" for f in files)):
        dataset = pq.ParquetDataset(path)
        schema = _arrow_schema(dataset.schema)
        rows = sum(fragment.count_rows() for fragment in dataset.fragments)
    elif suffix == ".csv":
        table = pa_csv.read_csv(path)
        schema, rows = _arrow_schema(table.schema), table.num_rows
    return DatasetDescription(digest.hexdigest(), schema, rows, str(path.resolve()))


def describe(data: Any, source: str | None = None) -> DatasetDescription:
    """Describe a DataFrame, an Arrow table, or a path to a file or folder."""
    if isinstance(data, pd.DataFrame):
        return describe_frame(data, source)
    if isinstance(data, pa.Table):
        return describe_frame(data.to_pandas(), source or "arrow")
    if isinstance(data, (str, Path)):
        return describe_path(data)
    raise ValidationError(
        f"log_dataset takes a DataFrame, an Arrow table or a path, got {type(data).__name__}", field="data"
    )
