"""Workspaces, Parquet data and a brute-force oracle the feature store tests share."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from conveyor.core.config import load_settings
from conveyor.core.workspace import Workspace

T0 = pd.Timestamp("2024-03-01 12:00:00")  # naive = UTC
US = pd.Timedelta(microseconds=1)


def ts(*values: Any) -> pd.Series:
    """Naive (UTC) timestamps at microsecond resolution."""
    return pd.Series(pd.to_datetime(list(values)), dtype="datetime64[us]")


def write_parquet(path: Path, frame: pd.DataFrame, unit: str = "us") -> Path:
    """Write ``frame`` (no index) as Parquet with timestamps in ``unit`` (us or ns)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, path, coerce_timestamps=None if unit == "ns" else unit, allow_truncated_timestamps=False)
    return path


@contextlib.contextmanager
def feature_store(where: Path | Workspace, mode: str = "local", **overrides: Any) -> Iterator[Any]:
    """A feature store on a workspace: ``where`` is its folder (opened with ``overrides``) or the
    open workspace. ``local``: in-process. ``remote``: the same workspace behind a real server
    started for it (acting as the workspace's default user), used through HTTP by a client in
    the same folder (the client reads the definition files there, the server the data)."""
    from conveyor.features import FeatureStore

    if mode == "local":
        with (FeatureStore(where, **overrides) if isinstance(where, Path) else FeatureStore(workspace=where)) as store:
            yield store
        return
    from server_support import remote_of, serve

    served = Workspace(load_settings(where, **overrides)) if isinstance(where, Path) else where
    try:
        with serve(served, auth=False) as url:
            remote = remote_of(url, served.settings.workspace)
            try:
                yield FeatureStore(workspace=remote)
            finally:
                remote.close()
    finally:
        if served is not where:
            served.close()


def make_store(stack: contextlib.ExitStack, root: Path, objects: Sequence[object], mode: str = "local"):  # noqa: ANN201
    """A feature store (see ``feature_store``) on a workspace in ``root`` (embedded defaults) with
    ``objects`` applied, closed with ``stack``."""
    store = stack.enter_context(feature_store(root, mode))
    store.apply(list(objects))
    return store


def historical(store, entity_df: pd.DataFrame, features, **kwargs: Any) -> pd.DataFrame:  # noqa: ANN001
    """``get_historical_features(...).to_df()`` on a copy of ``entity_df`` (the input must not change)."""
    before = entity_df.copy(deep=True)
    result = store.get_historical_features(entity_df, features=features, **kwargs).to_df()
    pd.testing.assert_frame_equal(entity_df, before)  # the caller's frame is not mutated
    return result


def _plain(value: Any) -> Any:
    """One cell as a comparable Python value: nulls -> None, timestamps -> UTC, numpy -> Python."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp | np.datetime64):
        stamp = pd.Timestamp(value)
        return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp
    if isinstance(value, np.generic):
        return value.item()
    return value


def rows(frame: pd.DataFrame, columns: Iterable[str] | None = None) -> list[tuple]:
    """The rows of ``frame`` (optionally some columns) as tuples of plain values, in order."""
    part = frame if columns is None else frame[list(columns)]
    return [tuple(_plain(v) for v in row) for row in part.itertuples(index=False, name=None)]


def column(frame: pd.DataFrame, name: str) -> list[Any]:
    """One column as plain values, in order."""
    return [_plain(v) for v in frame[name].tolist()]


def _utc(series: pd.Series) -> pd.Series:
    series = pd.to_datetime(series)
    return series.dt.tz_convert("UTC") if series.dt.tz is not None else series.dt.tz_localize("UTC")


def oracle(
    entity_df: pd.DataFrame,
    data: pd.DataFrame,
    *,
    keys: Sequence[str],
    features: Sequence[str],
    ttl: timedelta | None,
    timestamp_field: str = "event_timestamp",
    created_field: str | None = None,
    timestamp_column: str = "event_timestamp",
) -> pd.DataFrame:
    """Point-in-time values by brute force, one entity row at a time.

    For each entity row: the data rows with the same keys, ``ts <= entity_ts`` and
    ``ts >= entity_ts - ttl``; the one with the greatest (ts, created) wins; none -> nulls.
    """
    data = data.copy()
    data["__ts"] = _utc(data[timestamp_field])
    order = ["__ts"]
    if created_field:
        data["__created"] = _utc(data[created_field])
        order.append("__created")
    groups = {
        (key if isinstance(key, tuple) else (key,)): group.sort_values(order, kind="stable")
        for key, group in data.groupby(list(keys), sort=False)
    }
    entity_ts = _utc(entity_df[timestamp_column])
    out: list[list[Any]] = []
    for i, key in enumerate(entity_df[list(keys)].itertuples(index=False, name=None)):
        group = groups.get(tuple(key))
        now = entity_ts.iloc[i]
        if group is not None:
            window = group["__ts"] <= now
            if ttl is not None:
                window &= group["__ts"] >= now - ttl
            hit = group[window]
        if group is None or hit.empty:
            out.append([None] * len(features))
        else:
            out.append([_plain(v) for v in hit.iloc[-1][list(features)]])
    return pd.DataFrame(out, columns=list(features), index=entity_df.index, dtype=object)
