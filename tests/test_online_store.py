"""One conformance suite for every online store backend: SQLite and Redis.

Redis comes from ``CONVEYOR_TEST_REDIS_URL`` (default: the local server); each test gets
its own namespace, deleted afterwards. When the server is missing the Redis cases skip,
unless ``CONVEYOR_REQUIRE_SERVICES=1`` (as in CI), where they fail.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from conveyor.core.config import OnlineStoreSettings
from conveyor.errors import Conflict, Unavailable, ValidationError
from conveyor.features.dtypes import ARROW_TYPES
from conveyor.features.online import OnlineStore, OnlineTable, open_online_store

REPO = Path(__file__).resolve().parent.parent

TABLE = OnlineTable("stats__v1", (("amount", "float64"), ("orders", "int64"), ("tier", "string")))
COUNTER = OnlineTable("counter__v1", (("v", "int64"),))


@pytest.fixture
def store_settings(online_settings: dict, tmp_path: Path) -> OnlineStoreSettings:
    """Settings of a fresh, empty online store, once per backend (Redis: a private namespace)."""
    settings = OnlineStoreSettings(**online_settings["online"])
    return settings.model_copy(update={"path": str(tmp_path / "online.db")}) if settings.type == "sqlite" else settings


@pytest.fixture
def online_store(store_settings: OnlineStoreSettings, tmp_path: Path) -> Iterator[OnlineStore]:
    store = open_online_store(store_settings, tmp_path)
    yield store
    store.close()


def _batch(rows: list[tuple], table: OnlineTable = TABLE) -> pa.RecordBatch:
    """A staged batch from ``(key, ts, v1, v2, ...)`` rows."""
    columns = list(zip(*rows, strict=True))
    types = [pa.string(), pa.int64(), *(ARROW_TYPES[dtype] for _, dtype in table.features)]
    names = ["__key", "__ts", *(name for name, _ in table.features)]
    return pa.record_batch([pa.array(list(c), t) for c, t in zip(columns, types, strict=True)], names=names)


def _load(store: OnlineStore, job: str, rows: list[tuple], table: OnlineTable = TABLE) -> int:
    store.stage(table, job, _batch(rows, table))
    return store.commit(table, job)


def test_a_store_is_an_online_store(online_store: OnlineStore) -> None:
    assert isinstance(online_store, OnlineStore)


def test_staged_rows_are_invisible_until_commit(online_store: OnlineStore) -> None:
    online_store.stage(TABLE, "j1", _batch([("a", 10, 1.5, 3, "gold"), ("b", 10, 2.5, 4, "silver")]))
    assert online_store.read(TABLE, ["a", "b"]) == [None, None]
    assert online_store.count(TABLE) == 0
    assert online_store.commit(TABLE, "j1") == 2
    assert online_store.read(TABLE, ["a", "b"]) == [(10, 1.5, 3, "gold"), (10, 2.5, 4, "silver")]


def test_commit_applies_newer_and_equal_times_and_ignores_older(online_store: OnlineStore) -> None:
    _load(online_store, "j1", [("old", 10, 1.0, 1, "x"), ("tie", 10, 1.0, 1, "x"), ("new", 10, 1.0, 1, "x")])
    applied = _load(online_store, "j2", [("old", 9, 2.0, 2, "y"), ("tie", 10, 2.0, 2, "y"),
                                         ("new", 11, 2.0, 2, "y"), ("fresh", 1, 2.0, 2, "y")])
    assert applied == 3
    assert online_store.read(TABLE, ["old", "tie", "new", "fresh"]) == [
        (10, 1.0, 1, "x"), (10, 2.0, 2, "y"), (11, 2.0, 2, "y"), (1, 2.0, 2, "y")]


def test_a_backfill_never_moves_a_value_back_in_time(online_store: OnlineStore) -> None:
    _load(online_store, "recent", [("a", 1_000, 9.0, 9, "now")])
    assert _load(online_store, "backfill", [("a", t, float(t), t, "past") for t in (1, 500, 999)]) == 0
    assert online_store.read(TABLE, ["a"]) == [(1_000, 9.0, 9, "now")]


def test_a_key_staged_twice_in_one_job_keeps_its_latest_row(online_store: OnlineStore) -> None:
    online_store.stage(TABLE, "j1", _batch([("a", 5, 5.0, 5, "five"), ("a", 3, 3.0, 3, "three")]))
    online_store.stage(TABLE, "j1", _batch([("a", 4, 4.0, 4, "four"), ("b", 1, 1.0, 1, "one")]))
    assert online_store.commit(TABLE, "j1") == 2
    assert online_store.read(TABLE, ["a", "b"]) == [(5, 5.0, 5, "five"), (1, 1.0, 1, "one")]


def test_two_jobs_staged_then_committed_each_apply_their_own_rows(online_store: OnlineStore) -> None:
    j1, j2 = "j1", 'j2 "odd" name: *?/'
    online_store.stage(TABLE, j1, _batch([("a", 1, 1.0, 1, "j1"), ("shared", 1, 1.0, 1, "j1")]))
    online_store.stage(TABLE, j2, _batch([("b", 2, 2.0, 2, "j2"), ("shared", 2, 2.0, 2, "j2")]))
    assert online_store.commit(TABLE, j2) == 2
    assert online_store.read(TABLE, ["a", "b"]) == [None, (2, 2.0, 2, "j2")]
    assert online_store.commit(TABLE, j1) == 1, "j1's older row of 'shared' is not applied"
    assert online_store.read(TABLE, ["a", "b", "shared"]) == [(1, 1.0, 1, "j1"), (2, 2.0, 2, "j2"), (2, 2.0, 2, "j2")]
    assert online_store.commit(TABLE, j1) == 0, "a committed job's staging area is gone"


def test_discard_leaves_live_values_intact(online_store: OnlineStore) -> None:
    _load(online_store, "j1", [("a", 1, 1.0, 1, "live")])
    online_store.stage(TABLE, "j2", _batch([("a", 2, 2.0, 2, "staged"), ("b", 2, 2.0, 2, "staged")]))
    online_store.discard(TABLE, "j2")
    assert online_store.commit(TABLE, "j2") == 0
    assert online_store.read(TABLE, ["a", "b"]) == [(1, 1.0, 1, "live"), None]
    online_store.discard(TABLE, "never-staged")


def test_every_dtype_round_trips_including_nulls(online_store: OnlineStore) -> None:
    table = OnlineTable("types__v1", (("i64", "int64"), ("i32", "int32"), ("f64", "float64"), ("f32", "float32"),
                                      ("s", "string"), ("b", "bool"), ("t", "timestamp")))
    f32 = pa.array([0.1], pa.float32()).to_pylist()[0]
    rows = [("max", 1, 2**63 - 1, 2**31 - 1, 1e308, f32, "é \"quoted\", ' \\ 🎉", True, 1_700_000_000_123_456),
            ("min", 1, -(2**63), -(2**31), -0.1, -1.5, "", False, -1),
            ("nulls", 1, None, None, None, None, None, None, None)]
    assert _load(online_store, "j1", rows, table) == 3
    result = online_store.read(table, ["max", "min", "nulls"])
    assert result == [row[1:] for row in rows]
    assert [type(v) for v in result[0]] == [int, int, int, float, float, str, bool, int]
    assert type(result[1][6]) is bool


def test_timestamp_features_of_any_unit_read_as_epoch_microseconds(online_store: OnlineStore) -> None:
    table = OnlineTable("times__v1", (("t", "timestamp"),))
    batch = pa.record_batch([pa.array(["a"]), pa.array([7], pa.int64()), pa.array([1_500], pa.timestamp("ms", "UTC"))],
                            names=["__key", "__ts", "t"])
    online_store.stage(table, "j1", batch)
    online_store.commit(table, "j1")
    assert online_store.read(table, ["a"]) == [(7, 1_500_000)]


def test_absent_keys_read_as_none_in_their_positions(online_store: OnlineStore) -> None:
    assert online_store.read(TABLE, ["a"]) == [None], "a table never written reads as absent"
    _load(online_store, "j1", [("a", 1, 1.0, 1, "a"), ("clé 🎉|\"", 3, 3.0, 3, "c")])
    assert online_store.read(TABLE, ["x", "a", "y", "clé 🎉|\"", "z"]) == [
        None, (1, 1.0, 1, "a"), None, (3, 3.0, 3, "c"), None]
    assert online_store.read(TABLE, ["x"]) == [None]
    assert online_store.read(TABLE, []) == []


def test_many_keys_come_back_in_request_order(online_store: OnlineStore) -> None:
    _load(online_store, "j1", [(f"k{i}", i, float(i), i, str(i)) for i in range(2_000)])
    keys = [f"k{(i * 7919) % 2_000}" for i in range(1_300)] + ["k5", "missing", "k5"]
    expected = [None if k == "missing" else (int(k[1:]), float(k[1:]), int(k[1:]), k[1:]) for k in keys]
    assert online_store.read(TABLE, keys) == expected


def test_count_and_drop_remove_live_and_staged_rows(online_store: OnlineStore) -> None:
    _load(online_store, "j1", [(f"k{i}", 1, 1.0, 1, "x") for i in range(25)])
    other = OnlineTable("other__v1", TABLE.features)
    _load(online_store, "j1", [("k0", 2, 2.0, 2, "y")], other)
    online_store.stage(TABLE, "pending", _batch([("k0", 5, 5.0, 5, "z")]))
    assert online_store.count(TABLE) == 25
    online_store.drop(TABLE)
    assert online_store.count(TABLE) == 0
    assert online_store.read(TABLE, ["k0", "k1"]) == [None, None]
    assert online_store.commit(TABLE, "pending") == 0, "drop also removes the table's staging areas"
    assert online_store.count(other) == 1, "other tables are untouched"
    assert _load(online_store, "j2", [("k0", 1, 1.0, 1, "again")]) == 1


def test_a_batch_with_the_wrong_columns_is_refused(online_store: OnlineStore) -> None:
    wrong = pa.record_batch([pa.array(["a"]), pa.array([1], pa.int64()), pa.array([1])], names=["__key", "__ts", "x"])
    with pytest.raises(ValidationError, match="batch columns"):
        online_store.stage(COUNTER, "j1", wrong)
    with pytest.raises(ValidationError, match="may not be null"):
        online_store.stage(COUNTER, "j1", _batch([("a", None, 1)], COUNTER))


def test_readers_in_many_threads_see_whole_rows_while_a_job_commits(online_store: OnlineStore) -> None:
    keys = [f"k{i}" for i in range(200)]
    _load(online_store, "old", [(k, 1, 1) for k in keys], COUNTER)
    online_store.stage(COUNTER, "new", _batch([(k, 2, 2) for k in keys], COUNTER))
    seen: set[tuple] = set()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(200):
                seen.update(online_store.read(COUNTER, keys[:50]))
                seen.update(online_store.read(COUNTER, ["k7"]))
        except BaseException as error:  # noqa: BLE001  reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    assert online_store.commit(COUNTER, "new") == 200
    for thread in threads:
        thread.join()
    assert errors == []
    assert seen <= {(1, 1), (2, 2)}
    assert online_store.read(COUNTER, keys) == [(2, 2)] * 200


# A child process that stages N rows of COUNTER (ts 2, value 2) for job "job-1" in batches,
# then, in mode "commit", commits; it reports each step on stdout and then hangs.
CHILD = """
import sys, time
from pathlib import Path
import pyarrow as pa
from conveyor.core.config import OnlineStoreSettings
from conveyor.features.online import OnlineTable, open_online_store
settings = OnlineStoreSettings.model_validate_json(sys.argv[1])
store = open_online_store(settings, Path(sys.argv[2]))
table = OnlineTable("counter__v1", (("v", "int64"),))
mode, total, size = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
for start in range(0, total, size):
    n = min(size, total - start)
    store.stage(table, "job-1", pa.record_batch(
        [pa.array([f"k{i}" for i in range(start, start + n)]), pa.array([2] * n, pa.int64()),
         pa.array([2] * n, pa.int64())], names=["__key", "__ts", "v"]))
    print("STAGED", start + n, flush=True)
if mode == "commit":
    print("COMMITTING", flush=True)
    store.commit(table, "job-1")
    print("COMMITTED", flush=True)
time.sleep(600)
"""


def _child(settings: OnlineStoreSettings, state_dir: Path, mode: str, total: int, size: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", CHILD, settings.model_dump_json(), str(state_dir), mode,
                             str(total), str(size)], stdout=subprocess.PIPE, text=True, cwd=REPO)


def _wait_for(child: subprocess.Popen[str], prefix: str, at_least: int = 0) -> None:
    for line in child.stdout:  # type: ignore[union-attr]
        if line.startswith(prefix) and (not at_least or int(line.split()[1]) >= at_least):
            return
    raise AssertionError(f"child exited early with {child.wait()}")


def _kill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait()


def _values(store: OnlineStore, total: int) -> set[tuple | None]:
    keys = [f"k{i}" for i in range(total)]
    return {row for start in range(0, total, 10_000) for row in store.read(COUNTER, keys[start:start + 10_000])}


@pytest.mark.slow
def test_a_job_killed_while_staging_changes_nothing_and_can_be_redone(
        online_store: OnlineStore, store_settings: OnlineStoreSettings, tmp_path: Path) -> None:
    total = 20_000
    _load(online_store, "old", [(f"k{i}", 1, 1) for i in range(total)], COUNTER)
    child = _child(store_settings, tmp_path, "stage", 10**9, 1_000)
    _wait_for(child, "STAGED", at_least=total)
    _kill(child)
    assert _values(online_store, total) == {(1, 1)}
    assert online_store.count(COUNTER) == total
    rows = [(f"k{i}", 2, 2) for i in range(total)]
    assert _load(online_store, "job-2", rows, COUNTER) == total
    assert _values(online_store, total) == {(2, 2)}


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.1])
def test_a_job_killed_during_commit_leaves_the_table_all_old_or_all_new(
        online_store: OnlineStore, store_settings: OnlineStoreSettings, tmp_path: Path, delay: float) -> None:
    total = 300_000
    for start in range(0, total, 50_000):
        online_store.stage(COUNTER, "old", _batch([(f"k{i}", 1, 1) for i in range(start, start + 50_000)], COUNTER))
    online_store.commit(COUNTER, "old")
    child = _child(store_settings, tmp_path, "commit", total, 50_000)
    _wait_for(child, "COMMITTING")
    time.sleep(delay)
    _kill(child)
    values = _values(online_store, total)
    assert values in ({(1, 1)}, {(2, 2)}), f"a mix of old and new rows: {sorted(values, key=str)[:4]}"
    applied = online_store.commit(COUNTER, "job-1")
    assert applied == (total if values == {(1, 1)} else 0), "an interrupted commit can be run again"
    assert _values(online_store, total) == {(2, 2)}


def test_the_sqlite_store_refuses_a_table_whose_columns_changed(tmp_path: Path) -> None:
    store = open_online_store(OnlineStoreSettings(), tmp_path)
    _load(store, "j1", [("a", 1, 1)], COUNTER)
    changed = OnlineTable("counter__v1", (("w", "int64"),))
    store.stage(changed, "j2", _batch([("a", 2, 2)], changed))
    with pytest.raises(Conflict, match="counter__v1"):
        store.commit(changed, "j2")
    assert store.read(COUNTER, ["a"]) == [(1, 1)]
    store.close()
    assert (tmp_path / "online.db").is_file(), "without a path, SQLite lives in the state folder"


def test_an_unreachable_redis_is_unavailable_and_named_without_its_password() -> None:
    store = open_online_store(OnlineStoreSettings(type="redis", url="redis://:secret@127.0.0.1:1/0"), Path("."))
    for call in (lambda: store.read(COUNTER, ["a"]), lambda: store.count(COUNTER),
                 lambda: store.stage(COUNTER, "j", _batch([("a", 1, 1)], COUNTER)),
                 lambda: store.commit(COUNTER, "j")):
        with pytest.raises(Unavailable, match=r"online store redis://:\*\*\*@127\.0\.0\.1:1/0 is unreachable") as info:
            call()
        assert "secret" not in str(info.value)
    store.close()
