"""The prediction log: every answered request, written off the hot path to Parquet.

``PredictionLog.record`` only puts the request on a bounded queue; a writer thread
turns batches into Arrow tables and writes one file per (model, version, deployment,
input columns, UTC date), so each file has one schema::

    ROOT/date=YYYY-MM-DD/<model>-v<version>-<first request id>.parquet

ROOT is a folder or any fsspec URL. A file appears under its final name only once it
is complete (it is written under a hidden ``.tmp`` name, then moved), and each file
is indexed in the metadata store (``PredictionIndex``). A full queue or a failing sink
drops predictions and counts them; it never blocks or fails a request.

Columns, one row per predicted row:

    request_id     string         new_request_id(): sorts by time
    row            int32          position of the row in its request
    time           timestamp[us, UTC]
    deployment     string         null when a model is served without a deployment
    model          string
    version        int64
    variant        string         traffic route label: champion, challenger, b ...
    shadow         bool           a shadow answer, never sent to the client
    latency_ms     float64
    prediction     the model's type: the class label (string, int64 or bool) for a
                   classifier, float64 for a regressor
    score          float64        probability of the last class for a binary classifier,
                                  of the predicted class otherwise; null for a regressor
    probabilities  list<float64>  one per class; null for a regressor
    input.<name>   each column the client sent, with the type Arrow infers from its
                   values (a column mixing types across requests is stored as strings)
    feature.<name> each column fetched from the feature store rather than sent

A classifier's classes, in ``probabilities`` order, are in the file's key-value
metadata under ``conveyor.classes`` (JSON). Read the log with DuckDB:
``read_parquet('ROOT/**/*.parquet', hive_partitioning=true, union_by_name=true)``.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import logging
import math
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select

from conveyor.core.db import MetadataStore
from conveyor.core.db.base import now_ms
from conveyor.errors import ValidationError
from conveyor.serving.tables import prediction_log_files

logger = logging.getLogger(__name__)

DAY_S = 86_400
POLL_S = 0.05  # how often the writer looks at the queue between flush intervals


def new_request_id() -> str:
    """A request id that sorts by time: 12 hex digits of epoch milliseconds, 20 random."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


@dataclass(slots=True)
class PredictionRecord:
    """One answered request, as the prediction log receives it."""

    request_id: str
    time: float
    deployment: str | None
    model: str
    version: int
    variant: str
    shadow: bool
    latency_ms: float
    inputs: pd.DataFrame | list[dict[str, Any]] | Callable[[], list[dict[str, Any]]]  # called by the writer
    fetched: list[str]
    predictions: np.ndarray
    probabilities: np.ndarray | None
    classes: list | None


@dataclass(frozen=True)
class LoggedFile:
    """One Parquet file of the log and what it holds (times in epoch seconds, to the ms)."""

    path: str
    date: str
    model: str
    version: int
    deployment: str | None
    rows: int
    first_time: float
    last_time: float
    first_request_id: str
    last_request_id: str


class PredictionIndex:
    """The log's files in the metadata store: which file holds a model's predictions of a
    time range, or a given request."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    def add_file(self, path: str, date: str, model: str, version: int, deployment: str | None, rows: int,
                 first_time: float, last_time: float, first_request_id: str, last_request_id: str) -> None:
        """Index a written file (again, if the same path is written twice)."""
        row = {"path": path, "date": date, "model": model, "version": version, "deployment": deployment,
               "rows": rows, "first_time": math.floor(first_time * 1000), "last_time": math.ceil(last_time * 1000),
               "first_request_id": first_request_id, "last_request_id": last_request_id, "created_at": now_ms()}
        upsert = self.store.dialect.insert(prediction_log_files).values(**row)
        with self.store.write() as conn:
            conn.execute(upsert.on_conflict_do_update(index_elements=[prediction_log_files.c.path], set_=row))

    def files(self, model: str | None = None, version: int | None = None, since: float | None = None,
              until: float | None = None) -> list[LoggedFile]:
        """Files of ``model`` (and ``version``) holding predictions made between ``since``
        and ``until`` (epoch seconds, both optional), oldest first."""
        table = prediction_log_files.c
        query = select(prediction_log_files).order_by(table.first_time, table.path)
        if model is not None:
            query = query.where(table.model == model)
        if version is not None:
            query = query.where(table.version == version)
        if since is not None:
            query = query.where(table.last_time >= math.floor(since * 1000))
        if until is not None:
            query = query.where(table.first_time <= math.ceil(until * 1000))
        return self._select(query)

    def locate(self, request_id: str) -> list[LoggedFile]:
        """The files whose request id range covers ``request_id`` (the request's rows are
        in one of them, or in several if it was also answered by a shadow)."""
        table = prediction_log_files.c
        request_id = request_id.lower()
        return self._select(select(prediction_log_files).order_by(table.first_time, table.path)
                            .where(table.first_request_id <= request_id, table.last_request_id >= request_id))

    def _select(self, query: Any) -> list[LoggedFile]:
        with self.store.read() as conn:
            rows = conn.execute(query).all()
        return [LoggedFile(row.path, row.date, row.model, row.version, row.deployment, row.rows,
                           row.first_time / 1000, row.last_time / 1000, row.first_request_id, row.last_request_id)
                for row in rows]


class PredictionLog:
    """Writes predictions to date-partitioned Parquet files from a background thread.

    Counters, readable from any thread: ``recorded``, ``written`` and ``dropped`` count
    predicted rows, ``queued`` the requests waiting, ``files`` the files written;
    ``last_error`` is the last write or index failure.

    Args:
        root: folder or fsspec URL of the log.
        index: where written files are indexed; none if omitted.
        max_queue: requests that may wait for the writer; more are dropped.
        flush_rows: most rows the writer converts and writes in one step; it also starts
            writing as soon as this many requests wait.
        flush_interval_s: longest a prediction waits before the writer takes it.

    Raises:
        ValidationError: ``root`` names a file system fsspec does not know.
    """

    def __init__(self, root: str, index: PredictionIndex | None = None, max_queue: int = 100_000,
                 flush_rows: int = 10_000, flush_interval_s: float = 1.0) -> None:
        self.url = root.rstrip("/") if "://" in root else os.path.abspath(root)
        try:
            self._fs, self._root = fsspec.core.url_to_fs(self.url)
        except (ImportError, ValueError) as exc:
            raise ValidationError(f"setting 'serving.prediction_log': cannot open {root!r}: {exc}",
                                  field="serving.prediction_log") from exc
        self.index = index
        self.flush_rows = flush_rows
        self.flush_interval_s = flush_interval_s
        self.recorded = 0
        self.written = 0
        self.files = 0
        self.last_error: str | None = None
        self._refused = 0  # rows record() turned away: queue full, or log closed
        self._failed = 0  # rows the writer could not write
        self._accepted = 0  # requests queued so far
        self._done = 0  # requests the writer has finished, written or failed
        self._flush_target = 0
        self._closing = False
        self._queue: queue.Queue[PredictionRecord] = queue.Queue(max_queue)
        self._lock = threading.Lock()
        self._finished = threading.Condition()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="conveyor-prediction-log", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def __repr__(self) -> str:
        return f"PredictionLog({self.url!r})"

    @property
    def dropped(self) -> int:
        """Rows that will never be written: refused by a full queue or a closed log, or lost
        to a failed write."""
        return self._refused + self._failed

    @property
    def queued(self) -> int:
        """Requests waiting for the writer."""
        return self._queue.qsize()

    def record(self, record: PredictionRecord) -> bool:
        """Queue one answered request for writing; False (and counted as dropped) when the
        queue is full or the log closed. Never blocks: every conversion happens later."""
        rows = len(record.predictions)
        with self._lock:
            if not self._closing:
                try:
                    self._queue.put_nowait(record)
                except queue.Full:
                    pass
                else:
                    self.recorded += rows
                    self._accepted += 1
                    return True
            self._refused += rows
            return False

    def flush(self, timeout: float = 10) -> None:
        """Wait (at most ``timeout`` seconds) until every request recorded before the call
        is written or dropped."""
        with self._lock:
            target = self._accepted
        with self._finished:
            self._flush_target = max(self._flush_target, target)
            self._wake.set()
            self._finished.wait_for(lambda: self._done >= target, timeout)

    def close(self, timeout: float = 10) -> None:
        """Write what is queued and stop the writer; later records are dropped. Idempotent."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        atexit.unregister(self.close)
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        last = time.monotonic()
        while True:
            self._wake.wait(min(self.flush_interval_s, POLL_S))
            self._wake.clear()
            closing = self._closing
            if (closing or self._done < self._flush_target or self._queue.qsize() >= self.flush_rows
                    or time.monotonic() - last >= self.flush_interval_s):
                self._drain()
                last = time.monotonic()
            if closing:
                return

    def _drain(self) -> None:
        """Write what waits now, in batches of at most ``flush_rows`` rows, so the writer
        never holds the GIL for one giant conversion."""
        remaining = self._queue.qsize()
        while remaining > 0:
            batch: list[PredictionRecord] = []
            rows = 0
            while remaining > 0 and rows < self.flush_rows:
                batch.append(self._queue.get_nowait())
                rows += len(batch[-1].predictions)
                remaining -= 1
            self._write_batch(batch)
            with self._finished:
                self._done += len(batch)
                self._finished.notify_all()

    def _write_batch(self, batch: list[PredictionRecord]) -> None:
        try:
            groups: dict[tuple[Any, ...], list[PredictionRecord]] = {}
            for record in batch:
                if callable(record.inputs):
                    record.inputs = record.inputs()
                groups.setdefault(_group_key(record), []).append(record)
        except Exception as exc:  # noqa: BLE001  a malformed record loses its batch, never the writer
            self._fail(sum(len(r.predictions) for r in batch), exc)
            return
        for key, records in groups.items():
            try:
                logged = self._write_file(key, records)
            except Exception as exc:  # noqa: BLE001  a failing sink loses the rows, never the writer
                self._fail(sum(len(r.predictions) for r in records), exc)
                continue
            self.written += logged.rows
            self.files += 1
            if self.index is not None:
                try:
                    self.index.add_file(**dataclasses.asdict(logged))
                except Exception as exc:  # noqa: BLE001  the file is written; only its index entry is lost
                    self._note(f"indexing {logged.path}", exc)

    def _fail(self, rows: int, error: Exception) -> None:
        self._failed += rows
        self._note(f"dropping {rows} prediction row(s)", error)

    def _note(self, what: str, error: Exception) -> None:
        message = f"{type(error).__name__}: {error}"
        if message != self.last_error:  # a sink failing every second logs once, not every second
            logger.warning("prediction log %s: %s failed: %s", self.url, what, message)
        self.last_error = message

    def _write_file(self, key: tuple[Any, ...], records: list[PredictionRecord]) -> LoggedFile:
        day, model, version, deployment, inputs, fetched = key
        table = _to_table(records, _column_names(inputs, fetched))
        table = table.sort_by([("request_id", "ascending"), ("row", "ascending")])
        ids, times = table.column("request_id"), [r.time for r in records]
        first_id = ids[0].as_py()
        date = time.strftime("%Y-%m-%d", time.gmtime(day * DAY_S))
        name = f"{model}-v{version}-{first_id}.parquet"
        folder = f"{self._root}/date={date}"
        temporary = f"{folder}/.{name}.{uuid.uuid4().hex}.tmp"
        self._fs.makedirs(folder, exist_ok=True)
        try:
            with self._fs.open(temporary, "wb") as handle:
                pq.write_table(table, handle, compression="zstd")
            self._fs.mv(temporary, f"{folder}/{name}")
        except Exception:
            with contextlib.suppress(Exception):
                self._fs.rm(temporary)
            raise
        return LoggedFile(f"{self.url}/date={date}/{name}", date, model, version, deployment, table.num_rows,
                          min(times), max(times), first_id, ids[-1].as_py())


def _group_key(record: PredictionRecord) -> tuple[Any, ...]:
    """What one file shares: UTC day, model, version, deployment, input and fetched columns."""
    return (int(record.time // DAY_S), record.model, record.version, record.deployment,
            _input_names(record.inputs), tuple(record.fetched))


def _column_names(inputs: tuple[Any, ...], fetched: tuple[str, ...]) -> list[str]:
    """``feature.<name>`` for the fetched columns, ``input.<name>`` for those sent."""
    return [f"{'feature' if name in fetched else 'input'}.{name}" for name in inputs]


def _to_table(records: list[PredictionRecord], columns: list[str]) -> pa.Table:
    """The Arrow table of records sharing a group key, one row per predicted row."""
    counts = np.fromiter((len(r.predictions) for r in records), dtype=np.int64, count=len(records))
    total = int(counts.sum())

    def repeated(values: list[Any], kind: pa.DataType) -> pa.Array:
        return pa.array(np.repeat(np.array(values, dtype=object), counts), kind)

    starts = np.repeat(np.cumsum(counts) - counts, counts)
    micros = np.repeat(np.round(np.array([r.time for r in records]) * 1e6).astype(np.int64), counts)
    first = records[0]
    predictions = np.concatenate([np.asarray(r.predictions).ravel() for r in records])
    fields: dict[str, pa.Array] = {
        "request_id": repeated([r.request_id for r in records], pa.string()),
        "row": pa.array((np.arange(total) - starts).astype(np.int32)),
        "time": pa.array(micros, pa.timestamp("us", tz="UTC")),
        "deployment": repeated([r.deployment for r in records], pa.string()),
        "model": repeated([r.model for r in records], pa.string()),
        "version": repeated([r.version for r in records], pa.int64()),
        "variant": repeated([r.variant for r in records], pa.string()),
        "shadow": repeated([r.shadow for r in records], pa.bool_()),
        "latency_ms": repeated([r.latency_ms for r in records], pa.float64()),
    }
    if first.probabilities is None:
        fields["prediction"] = pa.array(predictions.astype(np.float64))
        fields["score"] = pa.nulls(total, pa.float64())
        fields["probabilities"] = pa.nulls(total, pa.list_(pa.float64()))
    else:
        proba = np.vstack([np.asarray(r.probabilities, dtype=np.float64) for r in records])
        width = proba.shape[1]
        fields["prediction"] = pa.array(predictions, from_pandas=True)
        fields["score"] = pa.array(proba[:, -1] if width == 2 else proba.max(axis=1))
        offsets = pa.array(np.arange(0, total * width + 1, width, dtype=np.int32))
        fields["probabilities"] = pa.ListArray.from_arrays(offsets, pa.array(proba.ravel()))
    if all(isinstance(r.inputs, pd.DataFrame) for r in records):
        inputs = np.concatenate([r.inputs.to_numpy(dtype=object) for r in records])
        for position, name in enumerate(columns):
            fields[name] = _input_column(inputs[:, position])
    else:
        rows = [row for r in records for row in _records(r.inputs)]
        for name in columns:
            fields[name] = _input_column([row.get(name.partition(".")[2]) for row in rows])
    metadata = {"conveyor.classes": json.dumps(list(first.classes), default=str)} if first.classes else None
    return pa.table(fields, metadata=metadata)


def _input_names(inputs: pd.DataFrame | list[dict[str, Any]]) -> tuple[str, ...]:
    """The input columns of one request: a frame's columns, or every key its rows use."""
    if isinstance(inputs, pd.DataFrame):
        return tuple(inputs.columns.tolist())
    return tuple(dict.fromkeys(key for row in inputs for key in row))


def _records(inputs: pd.DataFrame | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return inputs.to_dict(orient="records") if isinstance(inputs, pd.DataFrame) else inputs


def _input_column(values: np.ndarray | list[Any]) -> pa.Array:
    """An input column with the type Arrow infers, or strings if requests disagreed on it."""
    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if _missing(v) else str(v) for v in values], pa.string())


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))
