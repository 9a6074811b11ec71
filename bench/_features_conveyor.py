"""The Conveyor side of ``bench/features.py``, run in the project's virtualenv.

Usage: ``python _features_conveyor.py '{"command": "historical", ...}'``. Each run makes a
fresh workspace folder (``FeatureStore(folder)``; for Redis a ``conveyor.yaml`` with
``features: {online: {type: redis, url: ..., namespace: <unique>}}``) and applies, through
the public API only, an Entity, a FileSource on the Parquet file, a FeatureView with
``ttl=timedelta(days=30)`` and a FeatureService. Commands:

- ``historical``: ``store.get_historical_features(entity_df, service).to_df()``, median of
  ``repeats``; the last result is written to ``out`` for the checks;
- ``online``: ``store.materialize(start, end)`` over the whole data (timed, peak RSS after
  it), then ``store.get_online_features(service, rows).to_dict()`` of random keys, and the
  values (and statuses) of the sample keys.

Redis keys under the run's namespace are deleted afterwards. JSON-lines protocol of
``_workload.py``.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from _features_common import (
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


def open_store(args: dict[str, Any], name: str, online: dict[str, str] | None = None) -> tuple[Any, Any]:
    """A fresh workspace in ``args["folder"]/name`` with the definitions applied: (store, service)."""
    from conveyor.features import Entity, Feature, FeatureService, FeatureStore, FeatureView, FileSource

    folder = Path(args["folder"]) / name
    folder.mkdir(parents=True, exist_ok=True)
    if online:
        lines = "".join(f"    {key}: {value}\n" for key, value in online.items())
        (folder / "conveyor.yaml").write_text(f"features:\n  online:\n{lines}")
    store = FeatureStore(folder)
    entity = Entity(ENTITY, join_keys=[KEY])
    view = FeatureView(
        name=VIEW, entities=[entity], source=FileSource(args["features"]), timestamp_field=TIMESTAMP,
        features=[Feature(name, "float64") for name in FEATURES], ttl=dt.timedelta(days=TTL_DAYS),
    )
    service = FeatureService(SERVICE, features=[view])
    store.apply([entity, view, service])
    return store, service


def historical(args: dict[str, Any]) -> dict[str, Any]:
    """Scenario 1."""
    entity_df = pd.read_parquet(args["entity_rows"])
    store, service = open_store(args, "conveyor-historical")
    median, samples, result = median_runs(
        lambda: store.get_historical_features(entity_df, service).to_df(), args["repeats"])
    peak = peak_rss()
    result.to_parquet(args["out"], index=False)
    store.close()
    return {"median": median, "samples": samples, "rows": len(result), "peak_rss": peak}


def online(args: dict[str, Any]) -> dict[str, Any]:
    """Scenarios 2 and 3 with the SQLite (default) or Redis online store."""
    if args["backend"] == "redis":
        namespace = f"bench-features-{uuid.uuid4().hex[:12]}"
        with redis_cleanup(args["redis_url"], f"{namespace}*"):
            settings = {"type": "redis", "url": args["redis_url"], "namespace": namespace}
            return _online(args, open_store(args, "conveyor-redis", settings))
    return _online(args, open_store(args, "conveyor-sqlite"))


def _online(args: dict[str, Any], opened: tuple[Any, Any]) -> dict[str, Any]:
    store, service = opened
    rss_before = peak_rss()
    start = time.perf_counter()
    done = store.materialize(dt.datetime.fromtimestamp(args["start_us"] / 1e6, dt.timezone.utc),
                             dt.datetime.fromtimestamp(args["end_us"] / 1e6, dt.timezone.utc))
    seconds, peak = time.perf_counter() - start, peak_rss()
    written = sum(m.rows_written or 0 for m in done)

    def read_one(keys: list[int]) -> dict[str, list[Any]]:
        return store.get_online_features(service, [{KEY: keys[0]}]).to_dict()

    def read_many(keys: list[int]) -> dict[str, list[Any]]:
        return store.get_online_features(service, {KEY: keys}).to_dict()

    figures = online_figures(read_one, read_many, args)
    sample, statuses = [], {}
    for keys in lookup_keys(args["entities"], SAMPLE_SIZE, 1, seed=args["sample_seed"]):
        response = store.get_online_features(service, [{KEY: keys[0]}])
        row = response.to_dict()
        values = [row[name][0] for name in FEATURES]
        sample.append(None if all(v is None for v in values) else [None, *values])
        status = response.statuses[FEATURES[0]][0]
        statuses[status] = statuses.get(status, 0) + 1
    store.close()
    return {"materialize": seconds, "materialize_rss": peak, "rss_before": rss_before, "rows_written": written,
            **figures, "sample": sample, "statuses": statuses}


if __name__ == "__main__":
    run_worker({"historical": historical, "online": online})
