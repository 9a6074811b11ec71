"""The Feast side of ``bench/features.py``, run in ``bench/.venvs/feast``.

Usage: ``bench/.venvs/feast/bin/python _features_feast.py '{"command": "historical", ...}'``.
Each run writes its own repo in the scratch folder ``folder``: a ``feature_store.yaml``
(provider local, a file registry, offline store ``file`` (Dask) or ``duckdb``, online store
``sqlite`` or ``redis`` on ``127.0.0.1:6379``), then applies an Entity, a FileSource on the
Parquet file, a FeatureView with a 30-day TTL and a FeatureService. Commands:

- ``historical``: ``store.get_historical_features(entity_df, features=service).to_df()``,
  median of ``repeats``; the last result is written to ``out`` for the checks;
- ``online``: ``store.materialize(start, end)`` over the whole data (timed, peak RSS after
  it), then ``get_online_features(service, entity_rows).to_dict()`` of random keys, and
  the values of the sample keys.

Feast's own errors are reported as ``{"error": ...}`` rather than crashing the benchmark.
Redis keys of the run (they end with the project name) are deleted afterwards.
JSON-lines protocol of ``_workload.py``.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

os.environ.setdefault("FEAST_USAGE", "False")

import pandas as pd  # noqa: E402

from _features_common import (  # noqa: E402
    ENTITY,
    FEATURES,
    KEY,
    SAMPLE_SIZE,
    SERVICE,
    TIMESTAMP,
    TTL_DAYS,
    VIEW,
    lookup_keys,
    median_runs,
    online_figures,
    peak_rss,
    redis_cleanup,
    run_worker,
)


def write_repo(folder: Path, project: str, offline: str, online: str) -> None:
    """The ``feature_store.yaml`` of one run."""
    if online == "redis":
        online_store = '  type: redis\n  connection_string: "127.0.0.1:6379"\n'
    else:
        online_store = f"  type: sqlite\n  path: {folder / 'online.db'}\n"
    (folder / "feature_store.yaml").write_text(
        f"project: {project}\nregistry: {folder / 'registry.db'}\nprovider: local\n"
        f"offline_store:\n  type: {offline}\nonline_store:\n{online_store}"
        "entity_key_serialization_version: 3\n")


def open_store(args: dict[str, Any], offline: str, online: str, project: str) -> tuple[Any, Any]:
    """A fresh repo in ``args["folder"]`` with the definitions applied: (store, service)."""
    from feast import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource
    from feast.types import Float64, Int64
    from feast.value_type import ValueType

    folder = Path(args["folder"]) / f"feast-{offline}-{online}"
    folder.mkdir(parents=True, exist_ok=True)
    write_repo(folder, project, offline, online)
    store = FeatureStore(repo_path=str(folder))
    entity = Entity(name=ENTITY, join_keys=[KEY], value_type=ValueType.INT64)
    source = FileSource(name="entity_stats_source", path=args["features"], timestamp_field=TIMESTAMP)
    view = FeatureView(
        name=VIEW, entities=[entity], ttl=dt.timedelta(days=TTL_DAYS), source=source, online=True,
        schema=[Field(name=KEY, dtype=Int64), *(Field(name=name, dtype=Float64) for name in FEATURES)],
    )
    service = FeatureService(name=SERVICE, features=[view])
    store.apply([entity, view, service])
    return store, service


def new_project() -> str:
    """A project name no other run uses (Feast's Redis keys end with it)."""
    return f"bench_{uuid.uuid4().hex[:12]}"


def historical(args: dict[str, Any]) -> dict[str, Any]:
    """Scenario 1 with the ``file`` (Dask) or ``duckdb`` offline store."""
    entity_df = pd.read_parquet(args["entity_rows"])
    try:
        store, service = open_store(args, args["offline"], "sqlite", new_project())
        median, samples, result = median_runs(
            lambda: store.get_historical_features(entity_df=entity_df, features=service).to_df(), args["repeats"])
    except Exception as error:  # noqa: BLE001  reported, not fatal
        traceback.print_exc()
        return {"error": f"{type(error).__name__}: {error}".splitlines()[0][:300]}
    peak = peak_rss()
    result.to_parquet(args["out"], index=False)
    return {"median": median, "samples": samples, "rows": len(result), "peak_rss": peak}


def online(args: dict[str, Any]) -> dict[str, Any]:
    """Scenarios 2 and 3 with the ``sqlite`` or ``redis`` online store."""
    project = new_project()
    if args["backend"] == "redis":
        with redis_cleanup(args["redis_url"], f"*{project}"):
            return _online(args, project)
    return _online(args, project)


def _online(args: dict[str, Any], project: str) -> dict[str, Any]:
    try:
        store, service = open_store(args, "file", args["backend"], project)
        rss_before = peak_rss()
        start = time.perf_counter()
        store.materialize(dt.datetime.fromtimestamp(args["start_us"] / 1e6, dt.timezone.utc),
                          dt.datetime.fromtimestamp(args["end_us"] / 1e6, dt.timezone.utc))
        seconds, peak = time.perf_counter() - start, peak_rss()
    except Exception as error:  # noqa: BLE001  reported, not fatal
        traceback.print_exc()
        return {"error": f"{type(error).__name__}: {error}".splitlines()[0][:300]}

    def read(keys: list[int]) -> dict[str, list[Any]]:
        return store.get_online_features(features=service, entity_rows=[{KEY: key} for key in keys]).to_dict()

    figures = online_figures(read, read, args)
    sample = []
    for keys in lookup_keys(args["entities"], SAMPLE_SIZE, 1, seed=args["sample_seed"]):
        row = read(keys)
        values = [row[name][0] for name in FEATURES]
        sample.append(None if all(v is None for v in values) else [None, *values])
    return {"materialize": seconds, "materialize_rss": peak, "rss_before": rss_before, **figures, "sample": sample}


if __name__ == "__main__":
    run_worker({"historical": historical, "online": online})
