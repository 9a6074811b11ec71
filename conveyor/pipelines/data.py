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
from conveyor.pipelines.spec import DatasetStep, Pipeline, TableInput, parse_time

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


def _window_field(step: DatasetStep) -> str:
    """The setting a window error names: ``dataset.since``, or ``dataset.until`` when only it is set."""
    return "dataset.since" if step.since is not None or step.until is None else "dataset.until"


def _describe_window(step: DatasetStep) -> str:
    parts = [f"at or after {step.since}" if step.since else "", f"before {step.until}" if step.until else ""]
    return " and ".join(part for part in parts if part)


def _utc_times(frame: pd.DataFrame, step: DatasetStep) -> pd.Series:
    """The timestamp column as UTC times (naive times are taken as UTC), so a window
    compares the same way whether the data or the bounds carry an offset."""
    field = _window_field(step)
    column = step.timestamp_column
    if column not in frame.columns:
        raise ValidationError(f"{field}: the dataset has no column {column!r} to window on", field=field)
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values):
        raise ValidationError(f"{field}: column {column!r} holds numbers, not times, to window on", field=field)
    try:
        return pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"{field}: column {column!r} does not hold ISO 8601 times", field=field) from exc


def _window(step: DatasetStep, frame: pd.DataFrame) -> pd.DataFrame:
    """The rows inside ``since``/``until``; all of them when neither is set."""
    if step.since is None and step.until is None:
        return frame
    times = _utc_times(frame, step)
    kept = pd.Series(True, index=frame.index)
    if step.since is not None:
        kept &= times >= parse_time(step.since)
    if step.until is not None:
        kept &= times < parse_time(step.until)
    if not kept.any():
        field = _window_field(step)
        raise ValidationError(f"{field}: none of the {len(frame):,} rows has {step.timestamp_column!r} "
                              f"{_describe_window(step)} (they run from {times.min().isoformat()} "
                              f"to {times.max().isoformat()})", field=field)
    return frame[kept]


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
    """Read the pipeline's dataset, keeping the rows of its time window (for a feature
    service, the entity rows before the join); it must hold the target column."""
    step = pipeline.dataset
    if step.feature_service is None:
        frame = _window(step, _read(step, base, "dataset"))
        keys: list[str] = []
        source = step.path or "query"
    else:
        from conveyor.features import FeatureStore

        assert step.entities is not None
        entities = _window(step, _read(step.entities, base, "dataset.entities")).reset_index(drop=True)
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
