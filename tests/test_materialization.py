"""Materialisation into each online store: latest values, incremental watermarks, statistics,
statuses of online values, and crash safety (a killed run changes nothing and resumes)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from features_support import feature_store, write_parquet

from conveyor.features import (
    Entity,
    Feature,
    FeatureService,
    FeatureStore,
    FeatureView,
    FileSource,
)

NOW = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
DAY = pd.Timedelta(days=1)

pytestmark = pytest.mark.both_modes


def rows(keys: list[int], days_ago: float, amount: float, note: str | None = "x") -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": keys, "event_timestamp": [NOW - days_ago * DAY] * len(keys),
        "amount": [amount + k for k in keys], "note": [note] * len(keys),
    })


def definitions() -> list:
    customer = Entity("customer", ["customer_id"])
    view = FeatureView("stats", [customer], FileSource("data/*.parquet"), "event_timestamp",
                       [Feature("amount", "float64"), Feature("note", "string")], ttl=timedelta(days=10))
    return [customer, view, FeatureService("svc", [view])]


@pytest.fixture
def store(tmp_path: Path, online_settings: dict, mode: str) -> FeatureStore:
    write_parquet(tmp_path / "data" / "part1.parquet", pd.concat([
        rows([1, 2, 3], days_ago=5, amount=10.0), rows([1], days_ago=3, amount=20.0), rows([4], days_ago=30, amount=0.0),
    ]))
    with feature_store(tmp_path, mode, features=online_settings) as store:
        store.apply(definitions())
        yield store


def online(store: FeatureStore, keys: list[int]) -> tuple[list, list]:
    response = store.get_online_features("svc", [{"customer_id": k} for k in keys])
    return response.to_dict()["amount"], response.statuses["amount"]


def test_materialize_serves_the_latest_value_per_entity_with_statuses(store: FeatureStore) -> None:
    [run] = store.materialize()
    assert (run.status.value, run.rows_read, run.rows_written) == ("committed", 5, 4)
    assert run.newest_event_us == int((NOW - 3 * DAY).value // 1000)
    values, statuses = online(store, [1, 2, 4, 99])
    assert values == [21.0, 12.0, None, None]
    assert statuses == ["present", "present", "outside_ttl", "missing"]


def test_null_values_have_their_own_status(store: FeatureStore) -> None:
    write_parquet(store.settings.workspace / "data" / "part2.parquet", rows([2], days_ago=1, amount=1.0, note=None))
    store.materialize()
    response = store.get_online_features(["stats:note"], {"customer_id": [1, 2]})
    assert response.to_dict() == {"customer_id": [1, 2], "note": ["x", None]}
    assert response.statuses == {"note": ["present", "null"]}


def test_statistics_of_the_values_put_online_are_recorded(store: FeatureStore) -> None:
    store.materialize()
    stats = {s.feature: s.stats for s in store.feature_statistics("stats")}
    assert stats["amount"]["count"] == 4 and stats["amount"]["nulls"] == 0
    assert (stats["amount"]["min"], stats["amount"]["max"]) == (4.0, 21.0)
    assert stats["amount"]["mean"] == pytest.approx((21 + 12 + 13 + 4) / 4)
    assert stats["note"]["top"] == [{"value": "x", "count": 4}]


def test_incremental_materialization_reads_only_rows_after_the_watermark(store: FeatureStore) -> None:
    [first] = store.materialize_incremental(end=NOW - 2 * DAY)
    assert first.rows_read == 5
    write_parquet(store.settings.workspace / "data" / "part2.parquet", rows([2], days_ago=1, amount=50.0))
    [second] = store.materialize_incremental(end=NOW)
    assert (second.start_us, second.rows_read, second.rows_written) == (first.end_us, 1, 1)
    assert online(store, [1, 2])[0] == [21.0, 52.0]
    assert store.materialize_incremental(end=NOW) == []


def test_a_backfill_of_an_older_window_never_moves_a_value_back(store: FeatureStore) -> None:
    store.materialize()
    store.materialize(start=NOW - 6 * DAY, end=NOW - 4 * DAY)
    assert online(store, [1])[0] == [21.0]


KILLER = """\
import os, signal, sys
from conveyor.features import FeatureStore
import conveyor.features.materialize as materialize
materialize.BATCH_ROWS = 2
store = FeatureStore(sys.argv[1], features={online})
calls = []
real = store.online.{method}
def dying(*args):
    calls.append(1)
    if len(calls) == {after}:
        {before_kill}
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args)
setattr(store.online, "{method}", dying)
store.materialize_incremental()
"""


@pytest.mark.parametrize(("method", "after", "before_kill"), [
    ("stage", 2, "pass"),  # killed while staging
    ("commit", 1, "real(*args)"),  # killed after the online commit, before the metadata store heard of it
])
def test_a_killed_materialization_leaves_online_values_intact_and_resumes(
    store: FeatureStore, online_settings: dict, method: str, after: int, before_kill: str
) -> None:
    store.materialize_incremental(end=NOW - 4 * DAY)
    before = online(store, [1, 2, 3])
    assert before == ([11.0, 12.0, 13.0], ["present"] * 3)
    write_parquet(store.settings.workspace / "data" / "part2.parquet", rows([1, 2, 3, 5, 6], days_ago=1, amount=100.0))
    script = KILLER.format(online=repr(online_settings), method=method, after=after,
                           before_kill=before_kill)
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script), str(store.settings.workspace)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == -9, result.stderr[-2000:]
    running = [m for m in store.list_materializations("stats") if m.status.value == "running"]
    assert len(running) == 1
    if method == "stage":
        assert online(store, [1, 2, 3]) == before
    [resumed] = store.materialize_incremental()
    assert resumed.start_us == store.list_materializations("stats")[-1].end_us
    assert online(store, [1, 2, 3, 5]) == ([101.0, 102.0, 103.0, 105.0], ["present"] * 4)
    statuses = [m.status.value for m in store.list_materializations("stats")]
    assert sorted(statuses) == ["committed", "committed", "interrupted"]


def test_composite_keys_work_offline_and_online(tmp_path: Path, online_settings: dict, mode: str) -> None:
    frame = pd.DataFrame({"store_id": [1, 1, 2], "sku": ["a", "b", "a"],
                          "event_timestamp": [NOW - DAY] * 3, "price": [1.5, 2.5, 3.5]})
    write_parquet(tmp_path / "prices.parquet", frame)
    item = Entity("item", ["store_id", "sku"])
    view = FeatureView("prices", [item], FileSource("prices.parquet"), "event_timestamp", [Feature("price", "float64")])
    with feature_store(tmp_path, mode, features=online_settings) as store:
        store.apply([item, view])
        entity = pd.DataFrame({"store_id": [2, 1, 1], "sku": ["a", "b", "c"], "event_timestamp": [NOW] * 3})
        assert store.get_historical_features(entity, ["prices:price"]).to_df()["price"].tolist()[:2] == [3.5, 2.5]
        store.materialize()
        response = store.get_online_features(["prices:price"], {"store_id": [2, 1, 1], "sku": ["a", "b", "c"]})
        assert response.to_dict()["price"] == [3.5, 2.5, None]


def test_every_dtype_round_trips_through_the_online_store(tmp_path: Path, online_settings: dict, mode: str) -> None:
    when = NOW - DAY
    frame = pd.DataFrame({"customer_id": ["a", "b"], "event_timestamp": [when, when], "n": [1, None],
                          "x": [0.5, None], "s": ["p", None], "b": [True, None], "t": [when, None]})
    frame = frame.astype({"n": "Int32", "b": "boolean"})
    write_parquet(tmp_path / "all.parquet", frame)
    customer = Entity("customer", ["customer_id"])
    features = [Feature("n", "int32"), Feature("x", "float32"), Feature("s", "string"), Feature("b", "bool"),
                Feature("t", "timestamp")]
    view = FeatureView("everything", [customer], FileSource("all.parquet"), "event_timestamp", features)
    with feature_store(tmp_path, mode, features=online_settings) as store:
        store.apply([customer, view])
        store.materialize()
        refs = [f"everything:{f.name}" for f in features]
        response = store.get_online_features(refs, {"customer_id": ["a", "b"]})
    values = response.to_dict()
    assert [values[name][0] for name in "nxsb"] == [1, 0.5, "p", True]
    assert values["t"][0] == when.tz_localize("UTC").to_pydatetime()
    assert [values[f.name][1] for f in features] == [None] * 5
    assert response.statuses["t"] == ["present", "null"]
