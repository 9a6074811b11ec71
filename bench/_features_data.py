"""The data of ``bench/features.py``, generated with numpy from a fixed seed.

``features.parquet``: ``entity_id`` (int64), ``event_timestamp`` (timestamp[us, UTC]),
``f0``..``f9`` (float64). Entities 0..E-1 have lognormal activity (a few have a row or two
in 90 days, so the 30-day TTL matters), rows are uniform in time over the 90 days that
end at today's UTC midnight (online reads then find most entities within the TTL), and no
(entity_id, event_timestamp) pair occurs twice. Written in time-ordered row groups of
random order inside, chunk by chunk, so 50M rows never sit in memory at once.

``entities.parquet``: ``entity_id``, ``event_timestamp``, ``row_id`` (0..n-1). ~5% of the
keys are unknown (>= E); timestamps are uniform from 7 days before the data to 3 days
after it, so some rows precede their entity's first feature row and some are past the TTL.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from _features_common import FEATURES, KEY, ROW_ID, TIMESTAMP

DAY_US = 86_400 * 1_000_000
DAYS = 90
CHUNK_ROWS = 5_000_000
UNKNOWN_SHARE = 0.05
SEED = 7


@dataclass(frozen=True)
class Dataset:
    """Where the generated files are and what they hold."""

    features: Path
    entity_rows: Path
    entities: int
    rows: int  # feature rows actually written (duplicates of (key, ts) dropped, if any)
    entity_frame_rows: int
    start_us: int  # first possible feature timestamp, epoch µs
    end_us: int  # exclusive end of the feature timestamps (today's UTC midnight)


def today_midnight_us() -> int:
    """Today's UTC midnight in epoch microseconds."""
    today = dt.datetime.now(dt.timezone.utc).date()
    midnight = dt.datetime(today.year, today.month, today.day, tzinfo=dt.timezone.utc)
    return int(midnight.timestamp()) * 1_000_000


def _timestamps(values: np.ndarray) -> pa.Array:
    return pa.array(values, type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))


def _feature_chunk(rng: np.random.Generator, weights_cdf: np.ndarray, rows: int, lo_us: int, hi_us: int) -> pa.Table:
    keys = np.searchsorted(weights_cdf, rng.random(rows), side="right").astype(np.int64)
    keys = np.minimum(keys, len(weights_cdf) - 1)
    stamps = rng.integers(lo_us, hi_us, rows, dtype=np.int64)
    combined = (keys << 43) | (stamps - lo_us)  # 90 days of µs < 2**43
    _, first = np.unique(combined, return_index=True)
    if len(first) < rows:  # drop exact duplicates, keep the random order
        keep = np.sort(first)
        keys, stamps = keys[keep], stamps[keep]
    columns = {KEY: pa.array(keys), TIMESTAMP: _timestamps(stamps)}
    for name in FEATURES:
        values = rng.standard_normal(len(keys))
        columns[name] = pa.array(np.round(values * 100, 3))
    return pa.table(columns)


def write_features(path: Path, entities: int, rows: int, end_us: int, seed: int = SEED) -> int:
    """Write the feature file; returns the number of rows written."""
    rng = np.random.default_rng(seed)
    weights = rng.lognormal(0.0, 1.6, entities)
    cdf = np.cumsum(weights / weights.sum())
    start_us = end_us - DAYS * DAY_US
    chunks = max(1, -(-rows // CHUNK_ROWS))
    bounds = np.linspace(start_us, end_us, chunks + 1).astype(np.int64)
    written = 0
    writer: pq.ParquetWriter | None = None
    try:
        for i in range(chunks):
            size = rows // chunks + (1 if i < rows % chunks else 0)
            table = _feature_chunk(rng, cdf, size, int(bounds[i]), int(bounds[i + 1]))
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=1_000_000)
            written += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    return written


def write_entity_frame(path: Path, entities: int, rows: int, end_us: int, seed: int = SEED + 1) -> None:
    """Write the entity frame (random order: not sorted by key nor by time)."""
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, entities, rows, dtype=np.int64)
    unknown = rng.random(rows) < UNKNOWN_SHARE
    keys[unknown] = entities + rng.integers(0, entities, int(unknown.sum()), dtype=np.int64)
    start_us = end_us - DAYS * DAY_US
    stamps = rng.integers(start_us - 7 * DAY_US, end_us + 3 * DAY_US, rows, dtype=np.int64)
    table = pa.table({KEY: pa.array(keys), TIMESTAMP: _timestamps(stamps), ROW_ID: pa.array(np.arange(rows, dtype=np.int64))})
    pq.write_table(table, path, row_group_size=1_000_000)


def generate(folder: Path, entities: int, rows: int, entity_rows: int) -> Dataset:
    """Generate both files in ``folder``."""
    end_us = today_midnight_us()
    features, entity_frame = folder / "features.parquet", folder / "entities.parquet"
    written = write_features(features, entities, rows, end_us)
    write_entity_frame(entity_frame, entities, entity_rows, end_us)
    return Dataset(features, entity_frame, entities, written, entity_rows, end_us - DAYS * DAY_US, end_us)
