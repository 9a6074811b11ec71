"""The ``dataset`` step: rows from a file, a DuckDB query, or a feature service joined
point-in-time to an entity frame.

Relative paths, also inside queries, resolve from the pipeline's folder (DuckDB's
``file_search_path``), so a pipeline runs the same from any working directory.
"""

from __future__ import annotations

import glob
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from conveyor.core.artifacts import sha256_file
from conveyor.errors import ValidationError
from conveyor.pipelines.spec import DatasetStep, Pipeline, TableInput

if TYPE_CHECKING:
    from conveyor.core.workspace import Workspace


@dataclass(frozen=True)
class LoadedDataset:
    """The rows, and which columns identify entities (never used as features)."""

    frame: pd.DataFrame
    keys: list[str]
    source: str


def _files(base: Path, pattern: str, field: str) -> list[Path]:
    matched = sorted(Path(p) for p in glob.glob(str(base / pattern)))
    if not matched:
        raise ValidationError(f"{field}: no file matches {pattern!r} (from {base})", field=field)
    return matched


def input_fingerprint(step: DatasetStep, base: Path) -> str | None:
    """The sha256 of the files a ``path`` dataset reads, so an unchanged file is not read
    again; None for queries and feature services, whose inputs cannot be listed."""
    if step.path is None:
        return None
    digest = hashlib.sha256()
    for file in _files(base, step.path, "dataset.path"):
        digest.update(f"{file.name}\0{sha256_file(file)[0]}\0".encode())
    return digest.hexdigest()


def _read(table: TableInput, base: Path, field: str) -> pd.DataFrame:
    connection = duckdb.connect()
    try:
        connection.execute(f"SET file_search_path = '{str(base).replace(chr(39), chr(39) * 2)}'")
        if table.path is not None:
            files = [str(f) for f in _files(base, table.path, f"{field}.path")]
            reader = "read_csv_auto" if files[0].endswith((".csv", ".csv.gz")) else "read_parquet"
            return connection.sql(f"SELECT * FROM {reader}($files)", params={"files": files}).df()
        return connection.sql(table.query).df()
    except duckdb.Error as exc:
        raise ValidationError(f"{field}: {str(exc).splitlines()[0]}", field=field) from exc
    finally:
        connection.close()


def _select(step: DatasetStep, frame: pd.DataFrame) -> pd.DataFrame:
    for name in [*(step.columns or []), *step.drop]:
        if name not in frame.columns:
            raise ValidationError(f"dataset: no column {name!r} to keep or drop", field="dataset.columns")
    if step.columns:
        frame = frame[list(step.columns)]
    frame = frame.drop(columns=list(step.drop))
    for name in step.categorical:
        if name not in frame.columns:
            raise ValidationError(f"dataset.categorical: no column {name!r}", field="dataset.categorical")
        frame[name] = frame[name].astype("category")
    return frame


def load_dataset(pipeline: Pipeline, base: Path, workspace: Workspace) -> LoadedDataset:
    """Read the pipeline's dataset; it must hold the target column."""
    step = pipeline.dataset
    if step.feature_service is None:
        frame = _read(step, base, "dataset")
        keys: list[str] = []
        source = step.path or "query"
    else:
        from conveyor.features import FeatureStore

        assert step.entities is not None
        entities = _read(step.entities, base, "dataset.entities")
        store = FeatureStore(workspace=workspace)
        frame = store.get_historical_features(entities, step.feature_service, step.timestamp_column).to_df()
        keys = [c for c in entities.columns if c not in (pipeline.target, step.timestamp_column)]
        source = f"feature-service:{step.feature_service}"
    frame = _select(step, frame).reset_index(drop=True)
    if pipeline.target not in frame.columns:
        raise ValidationError(f"target: the dataset has no column {pipeline.target!r}", field="target")
    if frame[pipeline.target].isna().any():
        raise ValidationError(f"target: column {pipeline.target!r} has {int(frame[pipeline.target].isna().sum())} "
                              "missing values", field="target")
    return LoadedDataset(frame, keys, source)
