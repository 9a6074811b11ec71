"""The prediction log: date-partitioned Parquet that DuckDB reads, an index in the metadata
store, and a hot path that never blocks or fails, whatever the sink does."""

from __future__ import annotations

import dataclasses
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import fsspec
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from conveyor.core.workspace import Workspace
from conveyor.errors import ValidationError
from conveyor.serving.prediction_log import (
    PredictionIndex,
    PredictionLog,
    PredictionRecord,
    new_request_id,
)

MARCH_1 = datetime(2026, 3, 1, 12, tzinfo=timezone.utc).timestamp()


def classified(request_id: str | None = None, at: float = MARCH_1, model: str = "credit", version: int = 1,
               rows: int = 2, classes: tuple = ("no", "yes")) -> PredictionRecord:
    """A classifier's answer to a request of ``rows`` rows, one of them fetched (``tenure``)."""
    proba = np.linspace(0.1, 0.9, rows * len(classes)).reshape(rows, len(classes))
    proba = proba / proba.sum(axis=1, keepdims=True)
    inputs = pd.DataFrame({"income": [52_000.5 + i for i in range(rows)], "grade": ["B"] * rows,
                           "tenure": list(range(rows))})
    return PredictionRecord(
        request_id=request_id or new_request_id(), time=at, deployment="credit-prod", model=model, version=version,
        variant="champion", shadow=False, latency_ms=1.25, inputs=inputs, fetched=["tenure"],
        predictions=np.asarray(classes, dtype=object)[proba.argmax(axis=1)], probabilities=proba,
        classes=list(classes),
    )


def regressed(at: float = MARCH_1, model: str = "price", version: int = 3) -> PredictionRecord:
    """A regressor's answer to a one-row request, from a shadow variant outside any deployment."""
    return PredictionRecord(
        request_id=new_request_id(), time=at, deployment=None, model=model, version=version, variant="b",
        shadow=True, latency_ms=0.5, inputs=pd.DataFrame({"area": [71]}), fetched=[],
        predictions=np.array([318_000.0]), probabilities=None, classes=None,
    )


def read_log(root: Path | str, sql: str = "SELECT * FROM log ORDER BY request_id, row") -> pd.DataFrame:
    connection = duckdb.connect()
    connection.execute(f"CREATE VIEW log AS SELECT * FROM read_parquet('{root}/**/*.parquet', "
                       "hive_partitioning=true, union_by_name=true)")
    return connection.sql(sql).df()


def parquet_files(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*.parquet"))


def test_request_ids_are_32_hex_characters_led_by_the_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    request_id = new_request_id()
    after = time.time_ns() // 1_000_000
    assert len(request_id) == 32 and request_id == request_id.lower()
    assert before <= int(request_id[:12], 16) <= after
    time.sleep(0.002)
    assert new_request_id() > request_id


def test_a_classifier_answer_is_one_row_per_predicted_row_with_its_scores(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path))
    binary, three = classified(rows=2), classified(model="grade", rows=1, classes=("a", "b", "c"))
    assert log.record(binary) and log.record(three)
    log.close()
    frame = read_log(tmp_path, "SELECT * FROM log WHERE model = 'credit' ORDER BY row")
    assert frame["request_id"].tolist() == [binary.request_id] * 2
    assert frame["row"].tolist() == [0, 1]
    assert frame["prediction"].tolist() == binary.predictions.tolist()
    assert frame["score"].tolist() == binary.probabilities[:, 1].tolist()
    assert np.vstack(frame["probabilities"]).tolist() == binary.probabilities.tolist()
    assert frame["input.income"].tolist() == [52_000.5, 52_001.5]
    assert frame["input.grade"].tolist() == ["B", "B"]
    assert frame["feature.tenure"].tolist() == [0, 1]
    assert frame["date"].astype(str).tolist() == ["2026-03-01"] * 2
    assert frame[["deployment", "variant", "shadow", "latency_ms", "version"]].iloc[0].tolist() == [
        "credit-prod", "champion", False, 1.25, 1]
    assert frame["time"].iloc[0] == pd.Timestamp(MARCH_1, unit="s", tz="UTC")
    multiclass = read_log(tmp_path, "SELECT score, prediction FROM log WHERE model = 'grade'")
    assert multiclass["score"].iloc[0] == pytest.approx(three.probabilities.max())
    assert multiclass["prediction"].iloc[0] == "c"
    file = next(tmp_path.rglob("grade-*.parquet"))
    assert pq.read_schema(file).metadata[b"conveyor.classes"] == b'["a", "b", "c"]'


def test_the_files_have_the_documented_column_types(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path))
    log.record(classified())
    log.record(regressed())
    log.close()
    types = dict(read_log(tmp_path, "DESCRIBE SELECT * FROM log")[["column_name", "column_type"]].values)
    assert types == {
        "request_id": "VARCHAR", "row": "INTEGER", "time": "TIMESTAMP WITH TIME ZONE", "deployment": "VARCHAR",
        "model": "VARCHAR", "version": "BIGINT", "variant": "VARCHAR", "shadow": "BOOLEAN", "latency_ms": "DOUBLE",
        "prediction": "VARCHAR", "score": "DOUBLE", "probabilities": "DOUBLE[]", "input.income": "DOUBLE",
        "input.grade": "VARCHAR", "feature.tenure": "BIGINT", "input.area": "BIGINT", "date": "DATE",
    }
    regression = pq.read_table(next(tmp_path.rglob("price-*.parquet")))
    assert str(regression.schema.field("prediction").type) == "double"
    assert regression.column("score").null_count == 1 and regression.column("probabilities").null_count == 1
    assert regression.column("shadow").to_pylist() == [True]


def test_one_file_per_model_version_and_date(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path), flush_interval_s=60)
    first = [classified(version=1), classified(version=1), classified(version=2), regressed()]
    for record in first:
        log.record(record)
    log.close()
    ids = sorted(r.request_id for r in first[:2])
    assert parquet_files(tmp_path) == sorted([
        f"date=2026-03-01/credit-v1-{ids[0]}.parquet", f"date=2026-03-01/credit-v2-{first[2].request_id}.parquet",
        f"date=2026-03-01/price-v3-{first[3].request_id}.parquet",
    ])
    assert log.files == 3 and log.written == 7 and log.recorded == 7 and log.dropped == 0


def test_predictions_either_side_of_midnight_land_in_two_date_folders(tmp_path: Path) -> None:
    midnight = datetime(2026, 3, 2, tzinfo=timezone.utc).timestamp()
    log = PredictionLog(str(tmp_path), flush_interval_s=60)
    log.record(classified(at=midnight - 0.1))
    log.record(classified(at=midnight + 0.1))
    log.close()
    assert [path.split("/")[0] for path in parquet_files(tmp_path)] == ["date=2026-03-01", "date=2026-03-02"]
    dates = read_log(tmp_path, "SELECT DISTINCT date::VARCHAR AS d, time FROM log ORDER BY time")["d"].tolist()
    assert dates == ["2026-03-01", "2026-03-02"]


def test_inputs_given_as_a_callable_are_built_by_the_writer(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path), flush_interval_s=60)
    record = regressed()
    frame, calls = record.inputs, []
    record.inputs = lambda: calls.append(1) or frame
    log.record(record)
    assert calls == []
    log.close()
    assert calls == [1] and read_log(tmp_path)["input.area"].tolist() == [71]


def test_an_input_column_whose_type_differs_between_requests_is_kept_as_strings(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path), flush_interval_s=60)
    numeric, text = regressed(), regressed()
    text.inputs = pd.DataFrame({"area": ["71 m2"]})
    log.record(numeric)
    log.record(text)
    log.close()
    assert sorted(read_log(tmp_path)["input.area"]) == ["71", "71 m2"]
    assert log.dropped == 0


def test_any_fsspec_url_is_a_root(tmp_path: Path) -> None:
    log = PredictionLog("memory://prediction-log-test")
    record = regressed()
    log.record(record)
    log.close()
    fs = fsspec.filesystem("memory")
    [path] = fs.glob("/prediction-log-test/date=2026-03-01/*.parquet")
    with fs.open(path, "rb") as handle:
        assert pq.read_table(handle).column("request_id").to_pylist() == [record.request_id]
    fs.rm("/prediction-log-test", recursive=True)


def test_an_unknown_file_system_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValidationError, match="serving.prediction_log.*nosuchfs://x") as caught:
        PredictionLog("nosuchfs://x")
    assert caught.value.field == "serving.prediction_log"


def test_the_index_finds_files_by_model_version_time_and_request_id(workspace: Workspace, tmp_path: Path) -> None:
    index = PredictionIndex(workspace.metadata)
    log = PredictionLog(str(tmp_path / "log"), index, flush_interval_s=60)
    early, late = classified(at=MARCH_1), classified(at=MARCH_1 + 86_400 + 5)
    shadow = regressed(at=MARCH_1 + 10)
    for record in (early, late, shadow):
        log.record(record)
    log.close()
    credit = index.files(model="credit")
    assert [(f.date, f.rows, f.deployment) for f in credit] == [("2026-03-01", 2, "credit-prod"),
                                                                 ("2026-03-02", 2, "credit-prod")]
    assert credit[0].path == str(tmp_path / "log" / "date=2026-03-01" / f"credit-v1-{early.request_id}.parquet")
    assert credit[0].first_time == pytest.approx(MARCH_1) and credit[0].first_request_id == early.request_id
    assert [f.date for f in index.files(model="credit", since=MARCH_1 + 3600)] == ["2026-03-02"]
    assert [f.date for f in index.files(model="credit", until=MARCH_1 + 3600)] == ["2026-03-01"]
    assert index.files(model="credit", version=2) == []
    assert [f.model for f in index.files(since=MARCH_1 + 9, until=MARCH_1 + 11)] == ["price"]
    assert [f.path for f in index.locate(late.request_id.upper())] == [credit[1].path]
    assert index.locate("0" * 32) == []
    assert read_log(tmp_path / "log", f"SELECT count(*) AS n FROM read_parquet('{credit[1].path}')")["n"][0] == 2


def test_a_full_queue_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path), max_queue=5, flush_interval_s=3600)
    costs, accepted = [], []
    for _ in range(50):
        record = classified(rows=2)
        started = time.perf_counter()
        accepted.append(log.record(record))
        costs.append(time.perf_counter() - started)
    assert accepted == [True] * 5 + [False] * 45
    assert statistics.median(costs[5:]) < 0.001  # a put that waited for room would hang here, not be slow
    assert (log.recorded, log.dropped, log.queued) == (10, 90, 5)
    log.close()
    assert log.written == 10 and log.queued == 0


def test_a_failing_sink_counts_drops_and_the_writer_keeps_going(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the log wants a folder")
    log = PredictionLog(str(blocker / "log"), flush_interval_s=60)
    assert log.record(classified()) and log.record(regressed())
    log.flush()
    assert (log.written, log.dropped, log.files) == (0, 3, 0)
    assert log.last_error is not None and "blocker" in log.last_error
    blocker.unlink()
    record = regressed()
    assert log.record(record)
    log.flush()
    assert (log.written, log.dropped, log.files) == (1, 3, 1)
    assert read_log(blocker / "log")["request_id"].tolist() == [record.request_id]
    log.close()


def test_a_failing_index_keeps_the_written_file(tmp_path: Path) -> None:
    class BrokenIndex(PredictionIndex):
        def __init__(self) -> None:
            pass

        def add_file(self, *args: object, **kwargs: object) -> None:
            raise ConnectionError("metadata store is down")

    log = PredictionLog(str(tmp_path), BrokenIndex(), flush_interval_s=60)
    log.record(regressed())
    log.close()
    assert (log.written, log.dropped, log.files) == (1, 0, 1)
    assert log.last_error == "ConnectionError: metadata store is down"


def test_close_writes_what_is_queued_and_later_records_are_dropped(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path), flush_interval_s=3600)
    for _ in range(3):
        log.record(classified())
    assert log.written == 0
    log.close()
    assert log.written == 6 and len(read_log(tmp_path)) == 6
    assert log.record(classified()) is False
    assert log.dropped == 2
    log.close()


def test_the_writer_splits_a_backlog_into_batches_of_flush_rows(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path), flush_rows=4, flush_interval_s=3600)
    for _ in range(5):
        log.record(classified(rows=2))
    log.close()
    assert log.files == 3 and log.written == 10
    assert sorted(pq.read_metadata(path).num_rows for path in tmp_path.rglob("*.parquet")) == [2, 4, 4]


def test_record_costs_well_under_a_tenth_of_a_millisecond(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path))
    template = classified(rows=1)
    records = [dataclasses.replace(template, request_id=new_request_id()) for _ in range(10_000)]
    costs = []
    for record in records:
        started = time.perf_counter()
        log.record(record)
        costs.append(time.perf_counter() - started)
    log.close()
    assert statistics.median(costs) < 0.0001
    assert log.written + log.dropped == 10_000
