"""The physical limits of ``bench/features.py``: DuckDB, sqlite3 and redis-py alone.

Usage: ``python _features_limit.py '{"command": "historical", ...}'`` in the project's
virtualenv. Commands:

- ``historical``: one hand-written DuckDB ``ASOF LEFT JOIN`` of the entity frame (a pandas
  DataFrame, read before the clock starts) with the feature Parquet file, the TTL as a
  condition on the matched row, entity row order kept by a row number; returns pandas.
  Median of ``repeats``; the last result is written to ``out`` for the checks.
- ``online``: the latest row of every entity (DuckDB ``arg_max``) loaded into a SQLite table
  with an INTEGER PRIMARY KEY, or into one Redis hash (field = key, value = packed row):
  the limit of materialisation; then primary-key reads (``SELECT ... WHERE k = ?`` /
  ``IN (...)``, ``HGET`` / ``HMGET``) of random keys, and the values of the sample keys.

JSON-lines protocol of ``_workload.py``.
"""

from __future__ import annotations

import sqlite3
import struct
import time
import uuid
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from _features_common import (
    FEATURES,
    KEY,
    ROW_ID,
    SAMPLE_SIZE,
    TIMESTAMP,
    TTL_US,
    lookup_keys,
    median_runs,
    online_figures,
    peak_rss,
    redis_cleanup,
    run_worker,
)

PACKED = struct.Struct("<q" + "d" * len(FEATURES))  # ts_us, f0..f9 (NaN for a null)


def asof_sql(features: str) -> str:
    """The limit's point-in-time join of relation ``e`` (with ``__row``) and the Parquet file."""
    values = ",\n  ".join(
        f"CASE WHEN epoch_us(e.{TIMESTAMP}) - epoch_us(f.{TIMESTAMP}) <= {TTL_US} THEN f.{name} END AS {name}"
        for name in FEATURES)
    return f"""
SELECT e.{KEY}, e.{TIMESTAMP}, e.{ROW_ID},
  {values}
FROM e ASOF LEFT JOIN read_parquet('{features}') AS f
  ON e.{KEY} = f.{KEY} AND e.{TIMESTAMP} >= f.{TIMESTAMP}
ORDER BY e.__row"""


def historical(args: dict[str, Any]) -> dict[str, Any]:
    """Scenario 1's limit."""
    entity_df = pd.read_parquet(args["entity_rows"])
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if args.get("temp_dir"):
        con.execute(f"SET temp_directory = '{args['temp_dir']}'")
    query = asof_sql(args["features"])

    def run() -> pd.DataFrame:
        e = entity_df.assign(__row=np.arange(len(entity_df)))  # noqa: F841  scanned by DuckDB
        return con.sql(query).df()

    median, samples, result = median_runs(run, args["repeats"])
    peak = peak_rss()
    result.to_parquet(args["out"], index=False)
    return {"median": median, "samples": samples, "rows": len(result), "peak_rss": peak}


# online ----------------------------------------------------------------------------------------


def latest_rows(features: str) -> list[tuple[Any, ...]]:
    """``(key, ts_us, f0, ..., f9)`` of each entity's latest feature row."""
    values = ", ".join(f"arg_max({name}, {TIMESTAMP})" for name in FEATURES)
    query = f"SELECT {KEY}, epoch_us(max({TIMESTAMP})), {values} FROM read_parquet('{features}') GROUP BY {KEY}"
    return duckdb.connect().sql(query).fetchall()


class SqliteLimit:
    """One table keyed by INTEGER PRIMARY KEY."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path)
        columns = ", ".join(f"{name} REAL" for name in FEATURES)
        self.conn.execute(f"CREATE TABLE t (k INTEGER PRIMARY KEY, ts INTEGER NOT NULL, {columns})")
        self.one_sql = "SELECT * FROM t WHERE k = ?"

    def load(self, rows: list[tuple[Any, ...]]) -> None:
        marks = ", ".join("?" * (len(FEATURES) + 2))
        with self.conn:
            self.conn.executemany(f"INSERT INTO t VALUES ({marks})", rows)

    def read_one(self, keys: list[int]) -> tuple[Any, ...] | None:
        return self.conn.execute(self.one_sql, keys).fetchone()

    def read_many(self, keys: list[int]) -> list[tuple[Any, ...] | None]:
        found = {row[0]: row for row in self.conn.execute(
            f"SELECT * FROM t WHERE k IN ({', '.join('?' * len(keys))})", keys)}
        return [found.get(key) for key in keys]

    def values(self, key: int) -> list[Any] | None:
        row = self.read_one([key])
        return None if row is None else [row[1], *row[2:]]


class RedisLimit:
    """One hash: field = the key in decimal, value = ``PACKED`` (ts_us and the features)."""

    def __init__(self, url: str, name: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self.name = name

    def load(self, rows: list[tuple[Any, ...]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for start in range(0, len(rows), 10_000):
            chunk = rows[start:start + 10_000]
            pipe.hset(self.name, mapping={str(row[0]): PACKED.pack(*row[1:]) for row in chunk})
        pipe.execute()

    def read_one(self, keys: list[int]) -> tuple[Any, ...] | None:
        raw = self.client.hget(self.name, str(keys[0]))
        return None if raw is None else PACKED.unpack(raw)

    def read_many(self, keys: list[int]) -> list[tuple[Any, ...] | None]:
        return [None if raw is None else PACKED.unpack(raw) for raw in self.client.hmget(self.name, [str(k) for k in keys])]

    def values(self, key: int) -> list[Any] | None:
        row = self.read_one([key])
        return None if row is None else list(row)


def online(args: dict[str, Any]) -> dict[str, Any]:
    """Scenarios 2 and 3's limits for ``args["backend"]`` (sqlite or redis)."""
    start = time.perf_counter()
    rows = [tuple(None if isinstance(v, float) and np.isnan(v) else v for v in row)
            for row in latest_rows(args["features"])]
    if args["backend"] == "sqlite":
        store: SqliteLimit | RedisLimit = SqliteLimit(Path(args["folder"]) / "limit.db")
        store.load(rows)
        return finish(store, args, start)
    name = f"bench-features-limit-{uuid.uuid4().hex}"
    with redis_cleanup(args["redis_url"], name):
        store = RedisLimit(args["redis_url"], name)
        store.load(rows)
        return finish(store, args, start)


def finish(store: SqliteLimit | RedisLimit, args: dict[str, Any], start: float) -> dict[str, Any]:
    """Time the load, the lookups, and report the sample's values."""
    seconds, peak = time.perf_counter() - start, peak_rss()
    figures = online_figures(store.read_one, store.read_many, args)
    sample = [store.values(keys[0]) for keys in lookup_keys(args["entities"], SAMPLE_SIZE, 1, seed=args["sample_seed"])]
    return {"materialize": seconds, "materialize_rss": peak, **figures, "sample": sample}


if __name__ == "__main__":
    run_worker({"historical": historical, "online": online})
