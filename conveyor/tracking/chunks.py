"""Packing metric points into history chunks, and reading them back.

A chunk holds the points of one run and key from one flush as three little-endian
arrays (int64 steps, float64 values, int64 millisecond timestamps). NaN and infinity
are stored as they are, on every database.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

# run_id, experiment_id, key, value, step, timestamp_ms
Point = tuple[str, str, str, float, int, int]

CHUNK_COLUMNS = ("run_id", "key", "count", "steps", "values", "timestamps")
LATEST_COLUMNS = ("run_id", "key", "value", "step", "timestamp", "experiment_id")

_STEP = np.dtype("<i8")
_VALUE = np.dtype("<f8")


def pack(points: Iterable[Point]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Chunk rows (``CHUNK_COLUMNS``) and each key's newest point (``LATEST_COLUMNS``):
    the highest step, then the latest timestamp, then the last logged."""
    groups: dict[tuple[str, str], tuple[str, list[int], list[float], list[int]]] = {}
    for run, experiment, key, value, step, ts in points:
        group = groups.get((run, key))
        if group is None:
            group = groups[(run, key)] = (experiment, [], [], [])
        group[1].append(step)
        group[2].append(value)
        group[3].append(ts)
    chunks, latest = [], []
    for (run, key), (experiment, steps, values, stamps) in groups.items():
        step_array = np.array(steps, dtype=_STEP)
        stamp_array = np.array(stamps, dtype=_STEP)
        value_array = np.array(values, dtype=_VALUE)
        newest = int(np.lexsort((stamp_array, step_array))[-1])
        chunks.append((run, key, len(steps), step_array.tobytes(), value_array.tobytes(), stamp_array.tobytes()))
        value = values[newest]
        latest.append((run, key, None if value != value else value, steps[newest], stamps[newest], experiment))
    return chunks, latest


def unpack(rows: Iterable[Any]) -> pd.DataFrame:
    """A history (``step``, ``value``, ``timestamp``) from ``(steps, values, timestamps)``
    chunk rows in logging order, sorted by step then time; points logged at the same
    step and time keep their order."""
    rows = list(rows)
    if not rows:
        return pd.DataFrame({"step": np.array([], dtype=np.int64), "value": np.array([], dtype=float),
                             "timestamp": pd.to_datetime(np.array([], dtype=np.int64), unit="ms", utc=True)})
    steps = np.concatenate([np.frombuffer(row[0], dtype=_STEP) for row in rows])
    values = np.concatenate([np.frombuffer(row[1], dtype=_VALUE) for row in rows])
    stamps = np.concatenate([np.frombuffer(row[2], dtype=_STEP) for row in rows])
    order = np.lexsort((stamps, steps))
    return pd.DataFrame({
        "step": steps[order].astype(np.int64),
        "value": values[order].astype(float),
        "timestamp": pd.to_datetime(stamps[order].astype(np.int64), unit="ms", utc=True),
    })
