"""Point-in-time correctness of ``FeatureStore.get_historical_features``.

Each test builds a fresh workspace in ``tmp_path`` (embedded defaults), writes Parquet
data there, applies definitions and checks exact values: a feature value is the one of
the latest row with the same keys and ``ts <= entity_ts`` and ``entity_ts - ts <= ttl``.
"""

from __future__ import annotations

import contextlib
import os
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from features_support import (
    T0,
    US,
    column,
    historical,
    make_store,
    oracle,
    rows,
    ts,
    write_parquet,
)

from conveyor.errors import NotFound, ValidationError
from conveyor.features import Entity, Feature, FeatureService, FeatureView, FileSource

CUSTOMER = Entity("customer", join_keys=["customer_id"])
MERCHANT = Entity("merchant", join_keys=["merchant_id"])
DAY = timedelta(days=1)

pytestmark = pytest.mark.both_modes


@pytest.fixture
def build(tmp_path: Path, mode: str):  # noqa: ANN201
    """``build(objects)`` -> a FeatureStore on the workspace ``tmp_path`` with ``objects`` applied,
    in-process or through a server (``mode``)."""
    with contextlib.ExitStack() as stack:
        yield lambda objects: make_store(stack, tmp_path, objects, mode)


def source(root: Path, name: str, frame: pd.DataFrame, part: int = 0) -> str:
    """Write ``frame`` as ``data/<name>/part-<part>.parquet``; the glob of that folder."""
    write_parquet(root / "data" / name / f"part-{part}.parquet", frame)
    return str(root / "data" / name / "*.parquet")


def view(name: str, entity: Entity, path: str, features: dict[str, str], ttl: timedelta | None = None,
         **kwargs: object) -> FeatureView:
    return FeatureView(name=name, entities=[entity], source=FileSource(path), timestamp_field="event_timestamp",
                       features=[Feature(f, d) for f, d in features.items()], ttl=ttl, **kwargs)


def entities(**columns) -> pd.DataFrame:  # noqa: ANN003
    """An entity frame; ``event_timestamp`` given as a list of Timestamps."""
    frame = pd.DataFrame({k: v for k, v in columns.items() if k != "event_timestamp"})
    frame["event_timestamp"] = ts(*columns["event_timestamp"]).values
    return frame


# --- exact timestamp boundary: equal is used, 1 µs later never ------------------------------

@pytest.mark.parametrize("relative", [False, True], ids=["absolute_glob", "glob_relative_to_workspace"])
def test_row_at_exact_entity_timestamp_is_used_and_row_one_microsecond_later_never(tmp_path, build, relative):
    data = pd.DataFrame({"customer_id": ["C1"] * 4,
                         "event_timestamp": ts(T0 - pd.Timedelta(hours=1), T0, T0 + US, T0 + DAY),
                         "amount": [1.0, 2.0, 3.0, 4.0]})
    path = source(tmp_path, "stats", data)
    if relative:
        path = "data/stats/*.parquet"
    store = build([CUSTOMER, view("customer_stats", CUSTOMER, path, {"amount": "float64"}, ttl=30 * DAY)])
    when = [T0 - US, T0, T0 + US, T0 + 2 * US, T0 + DAY - US, T0 + DAY]
    out = historical(store, entities(customer_id=["C1"] * 6, event_timestamp=when), ["customer_stats:amount"])
    assert column(out, "amount") == [1.0, 2.0, 3.0, 3.0, 3.0, 4.0]


# --- ties on (key, timestamp): the later created row wins ----------------------------------

@pytest.mark.parametrize("layout", ["later_created_first", "later_created_last", "separate_files"])
def test_tie_on_event_timestamp_resolved_by_latest_created_timestamp(tmp_path, build, layout):
    early = {"customer_id": "C1", "event_timestamp": T0, "created": T0 + pd.Timedelta(hours=1), "amount": 10.0}
    late = {"customer_id": "C1", "event_timestamp": T0, "created": T0 + pd.Timedelta(hours=1) + US, "amount": 20.0}
    # created much later, but an older event: created time only breaks ties, it never outranks event time
    older = {"customer_id": "C1", "event_timestamp": T0 - DAY, "created": T0 + 5 * DAY, "amount": 99.0}
    frames = {"later_created_first": [[late, older, early]], "later_created_last": [[early, older, late]],
              "separate_files": [[late], [older, early]]}[layout]
    for part, records in enumerate(frames):
        frame = pd.DataFrame(records)
        frame["event_timestamp"] = frame["event_timestamp"].astype("datetime64[us]")
        frame["created"] = frame["created"].astype("datetime64[us]")
        path = source(tmp_path, "stats", frame, part)
    stats = view("customer_stats", CUSTOMER, path, {"amount": "float64"}, ttl=30 * DAY,
                 created_timestamp_field="created")
    store = build([CUSTOMER, stats])
    when = [T0, T0 - US, T0 + pd.Timedelta(hours=3)]
    out = historical(store, entities(customer_id=["C1"] * 3, event_timestamp=when), ["customer_stats:amount"])
    assert column(out, "amount") == [20.0, 99.0, 20.0]


# --- TTL edge: exactly ttl old is valid, 1 µs more is not ----------------------------------

@pytest.mark.parametrize("ttl", [DAY, timedelta(hours=6, seconds=1, microseconds=5), timedelta(seconds=1, microseconds=1)],
                         ids=["1d", "6h1s5us", "1s1us"])
def test_row_exactly_ttl_old_is_used_and_one_microsecond_older_gives_null(tmp_path, build, ttl):
    data = pd.DataFrame({"customer_id": ["C1"], "event_timestamp": ts(T0), "amount": [5.0], "n": [3]})
    store = build([CUSTOMER, view("customer_stats", CUSTOMER, source(tmp_path, "stats", data),
                                  {"amount": "float64", "n": "int64"}, ttl=ttl)])
    when = [T0, T0 + ttl - US, T0 + ttl, T0 + ttl + US, T0 + 10 * ttl]
    out = historical(store, entities(customer_id=["C1"] * 5, event_timestamp=when),
                     ["customer_stats:amount", "customer_stats:n"])
    assert rows(out, ["amount", "n"]) == [(5.0, 3), (5.0, 3), (5.0, 3), (None, None), (None, None)]


def test_nanosecond_source_row_after_entity_timestamp_is_never_used(tmp_path, build):
    stamps = pd.Series([T0 - pd.Timedelta(hours=1), T0 + pd.Timedelta(nanoseconds=1)], dtype="datetime64[ns]")
    data = pd.DataFrame({"customer_id": ["C1", "C1"], "event_timestamp": stamps, "amount": [1.0, 2.0]})
    write_parquet(tmp_path / "data" / "stats" / "part-0.parquet", data, unit="ns")
    store = build([CUSTOMER, view("customer_stats", CUSTOMER, "data/stats/*.parquet", {"amount": "float64"})])
    out = historical(store, entities(customer_id=["C1", "C1"], event_timestamp=[T0, T0 + US]), ["customer_stats:amount"])
    assert column(out, "amount") == [1.0, 2.0]  # 1 ns in the future is still the future


def test_no_ttl_means_any_age_and_latest_row_null_is_not_backfilled(tmp_path, build):
    data = pd.DataFrame({"customer_id": ["C1", "C1"], "event_timestamp": ts(T0 - 3000 * DAY, T0),
                         "amount": [1.0, None]})
    store = build([CUSTOMER, view("customer_stats", CUSTOMER, source(tmp_path, "stats", data), {"amount": "float64"})])
    out = historical(store, entities(customer_id=["C1", "C1"], event_timestamp=[T0 - US, T0 + 999 * DAY]),
                     ["customer_stats:amount"])
    assert column(out, "amount") == [1.0, None]  # the latest row's null value, not an older value


# --- late-arriving rows ---------------------------------------------------------------------

def test_late_arriving_row_is_seen_only_by_later_retrievals_and_only_from_its_event_time(tmp_path, build):
    first = pd.DataFrame({"customer_id": ["C1", "C1"], "event_timestamp": ts(T0 - 10 * DAY, T0), "amount": [1.0, 3.0]})
    path = source(tmp_path, "stats", first, part=1)
    store = build([CUSTOMER, view("customer_stats", CUSTOMER, path, {"amount": "float64"}, ttl=30 * DAY)])
    when = [T0 - 5 * DAY, T0 - DAY - US, T0 - DAY, T0 - pd.Timedelta(hours=1), T0 + pd.Timedelta(hours=1)]
    entity_df = entities(customer_id=["C1"] * 5, event_timestamp=when)
    before = historical(store, entity_df, ["customer_stats:amount"])
    assert column(before, "amount") == [1.0, 1.0, 1.0, 1.0, 3.0]

    late = pd.DataFrame({"customer_id": ["C1"], "event_timestamp": ts(T0 - DAY), "amount": [2.0]})
    source(tmp_path, "stats", late, part=2)  # arrives after the first retrieval, with an old event time
    after = historical(store, entity_df, ["customer_stats:amount"])
    assert column(after, "amount") == [1.0, 1.0, 2.0, 2.0, 3.0]
    only_before = historical(store, entity_df.iloc[:2].reset_index(drop=True), ["customer_stats:amount"])
    assert column(only_before, "amount") == [1.0, 1.0]
    assert column(before, "amount") == [1.0, 1.0, 1.0, 1.0, 3.0]  # the earlier result is not rewritten


# --- missing data: rows kept with nulls -----------------------------------------------------

def test_entity_rows_before_first_data_or_with_unknown_keys_are_kept_with_nulls(tmp_path, build):
    data = pd.DataFrame({"customer_id": ["C1"], "event_timestamp": ts(T0), "amount": [1.5], "n": [7],
                         "tier": ["gold"], "vip": [True], "seen": ts(T0 - pd.Timedelta(minutes=5))})
    dtypes = {"amount": "float64", "n": "int64", "tier": "string", "vip": "bool", "seen": "timestamp"}
    store = build([CUSTOMER, view("customer_stats", CUSTOMER, source(tmp_path, "stats", data), dtypes, ttl=30 * DAY)])
    entity_df = entities(customer_id=["C1", "ZZ", "C1", "C2"], event_timestamp=[T0 - US, T0, T0, T0 + DAY])
    out = historical(store, entity_df, [f"customer_stats:{f}" for f in dtypes])
    assert len(out) == 4
    assert column(out, "customer_id") == ["C1", "ZZ", "C1", "C2"]
    assert rows(out, list(dtypes)) == [(None,) * 5, (None,) * 5,
                                       (1.5, 7, "gold", True, T0 - pd.Timedelta(minutes=5)), (None,) * 5]


# --- shape: row count, order, duplicates, extra columns ------------------------------------

def test_row_count_order_duplicates_and_extra_columns_preserved(tmp_path, build):
    data = pd.DataFrame({"customer_id": ["C1", "C1", "C2", "C2"],
                         "event_timestamp": ts(T0 - 2 * DAY, T0, T0 - DAY, T0 + DAY), "amount": [1.0, 2.0, 3.0, 4.0]})
    store = build([CUSTOMER, view("customer_stats", CUSTOMER, source(tmp_path, "stats", data), {"amount": "float64"},
                                  ttl=30 * DAY)])
    when = [T0 + 2 * DAY, T0 - 3 * DAY, T0, T0, T0 - DAY, T0 + DAY, T0 - 3 * DAY, T0]
    entity_df = entities(request_id=[8, 1, 5, 5, 2, 9, 1, 3], customer_id=["C2", "C1", "C1", "C1", "C1", "C2", "C1", "C2"],
                         note=["h", "a", "e", "e", None, "i", "a", "c"],
                         weight=[0.5, np.nan, 1.25, 1.25, -2.0, 0.0, np.nan, 3.0], event_timestamp=when)
    entity_df.insert(1, "label", pd.Series([1, 0, 0, 0, 1, 1, 0, 1], dtype="int64"))
    out = historical(store, entity_df, ["customer_stats:amount"])
    assert list(out.columns) == [*entity_df.columns, "amount"]
    assert len(out) == 8
    assert rows(out, entity_df.columns) == rows(entity_df)
    for name in ["request_id", "label", "customer_id", "note", "weight"]:
        pd.testing.assert_series_equal(out[name].reset_index(drop=True), entity_df[name], check_names=True)
    assert column(out, "amount") == [4.0, None, 2.0, 2.0, 1.0, 4.0, None, 3.0]


# --- several views, TTLs, entities; services; full names -----------------------------------

def two_views(tmp_path: Path):  # noqa: ANN201
    customers = pd.DataFrame({"customer_id": ["C1", "C1", "C2"],
                              "event_timestamp": ts(T0 - 20 * DAY, T0 - 40 * DAY, T0 - 31 * DAY),
                              "amount_30d": [100.0, 50.0, 7.0], "orders_30d": [3, 1, 9]})
    merchants = pd.DataFrame({"merchant_id": ["M1", "M1", "M2"],
                              "event_timestamp": ts(T0 - pd.Timedelta(hours=2), T0 - 2 * DAY, T0 - pd.Timedelta(hours=25)),
                              "risk": [0.1, 0.9, 0.5], "category": ["food", "travel", "fuel"]})
    cust = view("customer_stats", CUSTOMER, source(tmp_path, "customers", customers),
                {"amount_30d": "float64", "orders_30d": "int64"}, ttl=30 * DAY)
    merch = view("merchant_stats", MERCHANT, source(tmp_path, "merchants", merchants),
                 {"risk": "float64", "category": "string"}, ttl=DAY)
    service = FeatureService("credit_v1", features=[cust, merch[["risk"]]])
    entity_df = entities(customer_id=["C1", "C2", "C1", "C2", "C1", "C1"],
                         merchant_id=["M1", "M2", "M2", "M1", "M1", "M1"],
                         event_timestamp=[T0, T0, T0 - DAY, T0 - 30 * DAY, T0 - DAY, T0 - 21 * DAY])
    expected = [(100.0, 3, 0.1), (None, None, None), (100.0, 3, 0.5), (7.0, 9, None), (100.0, 3, 0.9),
                (50.0, 1, None)]
    return [CUSTOMER, MERCHANT, cust, merch, service], service, entity_df, expected


@pytest.mark.parametrize("full", [False, True], ids=["short_names", "full_feature_names"])
@pytest.mark.parametrize("how", ["service_object", "service_name", "feature_refs"])
def test_views_with_different_ttls_and_entities_joined_in_one_call(tmp_path, build, how, full):
    objects, service, entity_df, expected = two_views(tmp_path)
    store = build(objects)
    features = {"service_object": service, "service_name": "credit_v1",
                "feature_refs": ["customer_stats:amount_30d", "customer_stats:orders_30d", "merchant_stats:risk"]}[how]
    out = historical(store, entity_df, features, full_feature_names=full)
    names = (["customer_stats__amount_30d", "customer_stats__orders_30d", "merchant_stats__risk"] if full
             else ["amount_30d", "orders_30d", "risk"])
    assert list(out.columns) == [*entity_df.columns, *names]  # `category` not selected by the service
    assert rows(out, names) == expected
    assert rows(out, entity_df.columns) == rows(entity_df)


def test_same_feature_name_in_two_views_needs_full_feature_names(tmp_path, build):
    frame = pd.DataFrame({"customer_id": ["C1"], "merchant_id": ["M1"], "event_timestamp": ts(T0), "amount": [1.0]})
    a = view("cust_a", CUSTOMER, source(tmp_path, "a", frame), {"amount": "float64"})
    b = view("merch_b", MERCHANT, source(tmp_path, "b", frame.assign(amount=[2.0])), {"amount": "float64"})
    store = build([CUSTOMER, MERCHANT, a, b])
    entity_df = entities(customer_id=["C1"], merchant_id=["M1"], event_timestamp=[T0])
    with pytest.raises(ValidationError) as error:
        store.get_historical_features(entity_df, features=["cust_a:amount", "merch_b:amount"]).to_df()
    assert "amount" in str(error.value)
    out = historical(store, entity_df, ["cust_a:amount", "merch_b:amount"], full_feature_names=True)
    assert rows(out, ["cust_a__amount", "merch_b__amount"]) == [(1.0, 2.0)]


# --- time zones -----------------------------------------------------------------------------

AROUND_DST = [T0, pd.Timestamp("2024-03-31 00:59:59.999999"), pd.Timestamp("2024-03-31 01:00:00"),
              pd.Timestamp("2024-03-31 01:30:00"), pd.Timestamp("2024-10-27 00:30:00"),
              pd.Timestamp("2024-10-27 01:00:00"), pd.Timestamp("2024-10-27 01:30:00")]


def tz_setup(tmp_path: Path, source_tz: str | None):  # noqa: ANN201
    stamps = ts(*AROUND_DST)
    data = pd.DataFrame({"customer_id": ["C1"] * len(AROUND_DST),
                         "event_timestamp": stamps.dt.tz_localize(source_tz) if source_tz else stamps,
                         "amount": [float(i) for i in range(len(AROUND_DST))]})
    stats = view("customer_stats", CUSTOMER, source(tmp_path, "stats", data), {"amount": "float64"},
                 ttl=timedelta(hours=1))
    offsets = [-US, pd.Timedelta(0), US, pd.Timedelta(minutes=59), pd.Timedelta(hours=1), pd.Timedelta(hours=1) + US]
    when = [t + o for t in AROUND_DST for o in offsets]
    return [CUSTOMER, stats], data, entities(customer_id=["C1"] * len(when), event_timestamp=when)


@pytest.mark.parametrize("source_tz", [None, "UTC"], ids=["naive_source", "utc_source"])
@pytest.mark.parametrize("form", ["naive_ns", "UTC", "Europe/Paris", "America/New_York"])
def test_tz_aware_entity_timestamps_match_equivalent_naive_utc(tmp_path, build, form, source_tz):
    objects, data, naive = tz_setup(tmp_path, source_tz)
    store = build(objects)
    aware = naive.copy()
    stamp = naive["event_timestamp"]
    aware["event_timestamp"] = (stamp.astype("datetime64[ns]") if form == "naive_ns"
                                else stamp.dt.tz_localize("UTC").dt.tz_convert(form))
    base = historical(store, naive, ["customer_stats:amount"])
    out = historical(store, aware, ["customer_stats:amount"])
    expected = oracle(naive, data, keys=["customer_id"], features=["amount"], ttl=timedelta(hours=1))
    assert column(base, "amount") == column(expected, "amount")
    assert column(out, "amount") == column(base, "amount")
    assert column(out, "event_timestamp") == column(naive, "event_timestamp")  # same instants


@pytest.mark.parametrize("source_tz", [None, "UTC"], ids=["naive_source", "utc_source"])
def test_result_does_not_depend_on_the_machine_time_zone(tmp_path, build, source_tz):
    objects, data, naive = tz_setup(tmp_path, source_tz)
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Kolkata"  # new DuckDB connections take their TimeZone from here
    time.tzset()
    try:
        out = historical(build(objects), naive, ["customer_stats:amount"])
    finally:
        if previous is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = previous
        time.tzset()
    expected = oracle(naive, data, keys=["customer_id"], features=["amount"], ttl=timedelta(hours=1))
    assert column(out, "amount") == column(expected, "amount")


# --- randomized comparison with a brute-force oracle ---------------------------------------

def test_randomized_retrieval_matches_brute_force_oracle(tmp_path, build):
    rng = np.random.default_rng(20240301)
    base = pd.Timestamp("2024-01-01")
    minutes = lambda n, span: pd.to_timedelta(rng.integers(0, span, n), unit="min")  # noqa: E731

    cust = pd.DataFrame({"customer_id": rng.choice([f"C{i}" for i in range(40)], 3000),
                         "event_timestamp": (base + minutes(3000, 60 * 24 * 60)).astype("datetime64[us]"),
                         "amount": rng.normal(100, 30, 3000).round(2), "n_orders": rng.integers(0, 50, 3000)})
    cust.loc[rng.random(3000) < 0.05, "amount"] = np.nan
    cust = cust.drop_duplicates(["customer_id", "event_timestamp"]).reset_index(drop=True)
    half = len(cust) // 2
    path = source(tmp_path, "cust", cust.iloc[:half])
    source(tmp_path, "cust", cust.iloc[half:], part=1)

    merch = pd.DataFrame({"merchant_id": rng.choice([f"M{i}" for i in range(20)], 2000),
                          "event_timestamp": (base + pd.to_timedelta(rng.integers(0, 60 * 24, 2000), unit="h")),
                          "created": base + minutes(2000, 90 * 24 * 60) + pd.to_timedelta(rng.integers(0, 60_000_000, 2000), unit="us"),
                          "risk": rng.random(2000)})
    merch["event_timestamp"] = merch["event_timestamp"].astype("datetime64[us]")
    merch["created"] = merch["created"].astype("datetime64[us]")
    merch = merch.drop_duplicates(["merchant_id", "event_timestamp", "created"]).reset_index(drop=True)
    assert merch.duplicated(["merchant_id", "event_timestamp"]).sum() > 50  # plenty of ties to resolve

    ttl_plain, ttl_merch = timedelta(days=3), DAY
    plain = view("cust_plain", CUSTOMER, path, {"amount": "float64", "n_orders": "int64"}, ttl=ttl_plain)
    transformed = view("cust_tx", CUSTOMER, path, {"amount_x2": "float64", "orders_p1": "int64"}, ttl=None,
                       transform="SELECT customer_id, event_timestamp, amount * 2 AS amount_x2, "
                                 "CAST(n_orders AS BIGINT) + 1 AS orders_p1 FROM source WHERE n_orders % 3 <> 0")
    merchant = view("merch", MERCHANT, source(tmp_path, "merch", merch), {"risk": "float64"}, ttl=ttl_merch,
                    created_timestamp_field="created")
    store = build([CUSTOMER, MERCHANT, plain, transformed, merchant])

    n = 2500
    when = base + pd.to_timedelta(rng.integers(-2 * 24 * 60, 62 * 24 * 60, n), unit="min")
    entity_df = pd.DataFrame({"row_id": np.arange(n), "customer_id": rng.choice([f"C{i}" for i in range(45)], n),
                              "merchant_id": rng.choice([f"M{i}" for i in range(22)], n),
                              "event_timestamp": pd.Series(when).astype("datetime64[us]")})
    # exact boundaries: entity ts equal to a data row's ts, or exactly ttl (or ttl + 1 µs) after it
    picks = rng.choice(len(cust), 300)
    ttl_us = int(ttl_plain / timedelta(microseconds=1))
    shifts = pd.to_timedelta(rng.choice([0, ttl_us, ttl_us + 1, -1], 300), unit="us")
    entity_df.loc[:299, "customer_id"] = cust["customer_id"].to_numpy()[picks]
    entity_df.loc[:299, "event_timestamp"] = (cust["event_timestamp"].iloc[picks] + shifts).to_numpy()
    mpicks = rng.choice(len(merch), 300)
    entity_df.loc[300:599, "merchant_id"] = merch["merchant_id"].to_numpy()[mpicks]
    entity_df.loc[300:599, "event_timestamp"] = (merch["event_timestamp"].iloc[mpicks] + pd.Timedelta(ttl_merch)).to_numpy()
    entity_df = entity_df.sample(frac=1, random_state=3).reset_index(drop=True)

    refs = ["cust_plain:amount", "cust_plain:n_orders", "cust_tx:amount_x2", "cust_tx:orders_p1", "merch:risk"]
    out = historical(store, entity_df, refs)

    kept = cust[cust["n_orders"] % 3 != 0].assign(amount_x2=lambda f: f["amount"] * 2, orders_p1=lambda f: f["n_orders"] + 1)
    expected = pd.concat([
        oracle(entity_df, cust, keys=["customer_id"], features=["amount", "n_orders"], ttl=ttl_plain),
        oracle(entity_df, kept, keys=["customer_id"], features=["amount_x2", "orders_p1"], ttl=None),
        oracle(entity_df, merch, keys=["merchant_id"], features=["risk"], ttl=ttl_merch, created_field="created"),
    ], axis=1)
    assert list(out.columns) == [*entity_df.columns, *expected.columns]
    assert rows(out, entity_df.columns) == rows(entity_df)
    for name in expected.columns:
        got, want = column(out, name), column(expected, name)
        bad = [i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w]
        assert not bad, f"{name}: {len(bad)} rows differ, e.g. row {bad[0]}: got {got[bad[0]]}, want {want[bad[0]]}"
    # the data is not degenerate: every kind of outcome occurs
    assert 0 < sum(v is None for v in column(out, "amount")) < n / 2
    assert 0 < sum(v is None for v in column(out, "risk")) < n


# --- bad input ------------------------------------------------------------------------------

@pytest.fixture
def simple_store(tmp_path, build):  # noqa: ANN201
    data = pd.DataFrame({"customer_id": ["C1"], "event_timestamp": ts(T0), "amount": [1.0]})
    return build([CUSTOMER, view("customer_stats", CUSTOMER, source(tmp_path, "stats", data), {"amount": "float64"})])


@pytest.mark.parametrize(("drop", "timestamp_column"), [("customer_id", "event_timestamp"),
                                                       ("event_timestamp", "event_timestamp"), (None, "as_of")])
def test_entity_df_missing_join_key_or_timestamp_column_names_it(simple_store, drop, timestamp_column):
    entity_df = entities(customer_id=["C1"], event_timestamp=[T0])
    if drop:
        entity_df = entity_df.drop(columns=[drop])
    with pytest.raises(ValidationError) as error:
        simple_store.get_historical_features(entity_df, features=["customer_stats:amount"],
                                             timestamp_column=timestamp_column).to_df()
    assert error.value.field == (drop or timestamp_column)


@pytest.mark.parametrize(("ref", "named"), [("customer_stats:nope", "nope"), ("no_such_view:amount", "no_such_view")])
def test_unknown_feature_or_view_is_refused_by_name(simple_store, ref, named):
    entity_df = entities(customer_id=["C1"], event_timestamp=[T0])
    with pytest.raises((NotFound, ValidationError)) as error:
        simple_store.get_historical_features(entity_df, features=[ref]).to_df()
    assert named in str(error.value)


# --- outputs agree --------------------------------------------------------------------------

def test_to_arrow_to_parquet_and_to_batches_give_the_same_rows_as_to_df(tmp_path, build):
    objects, service, entity_df, expected = two_views(tmp_path)
    job = build(objects).get_historical_features(entity_df, features=service)
    frame = job.to_df()
    table = job.to_arrow()
    job.to_parquet(tmp_path / "out.parquet")
    written = pq.read_table(tmp_path / "out.parquet")
    assert table.column_names == written.column_names == list(frame.columns)
    assert rows(table.to_pandas()) == rows(written.to_pandas()) == rows(frame)
    streamed = pa.Table.from_batches(list(job.to_batches(rows_per_batch=2)))
    assert streamed.column_names == list(frame.columns) and rows(streamed.to_pandas()) == rows(frame)
    assert rows(frame, ["amount_30d", "orders_30d", "risk"]) == expected
