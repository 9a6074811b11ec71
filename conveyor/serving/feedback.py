"""Ground truth for logged predictions, recorded by request id and row.

Labels arrive long after the predictions (a loan defaults months later) through
``POST /v1/feedback``, ``conveyor feedback ingest FILE`` or ``FeedbackService.record``.
One label is kept per (request id, row): the newest by time wins, so replaying an old
file never undoes a correction. Monitoring joins them to the prediction log on
``request_id`` and ``row``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import bindparam, func, select

from conveyor.core.db import MetadataStore
from conveyor.core.db.dialects import Dialect
from conveyor.errors import NotFound, ValidationError
from conveyor.serving.payload import BadRequest, Problem
from conveyor.serving.tables import prediction_feedback

REQUEST_ID = re.compile(r"^[0-9a-fA-F]{32}$")
FIELDS = ("request_id", "label", "row")
SHAPES = 'expected {"request_id": "...", "label": ..., "row": 0} or {"feedback": [{...}, ...]}'
COLUMNS = ("request_id", "row", "label", "time")
CHUNK_ROWS = 10_000
MAX_ROW = 2**31 - 1


@dataclass(frozen=True, kw_only=True)
class Feedback:
    """The true label of one predicted row (``row``: its position in the request)."""

    request_id: str
    row: int = 0
    label: Any
    time: float = field(default_factory=time.time)


def _request_id_problem(value: Any) -> str | None:
    if value is None or value == "":
        return "must not be empty"
    if not isinstance(value, str) or not REQUEST_ID.match(value):
        return f"must be 32 hex characters (a request id the server answered with), got {value!r}"
    return None


def _label_problem(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "must not be null"
    if isinstance(value, float) and math.isinf(value):
        return f"must be a finite number, got {value!r}"
    if not isinstance(value, (bool, int, float, str)):
        return f"must be a number, string or bool, got {type(value).__name__}"
    return None


def _row_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ROW:
        return f"must be a non-negative integer, got {value!r}"
    return None


def _problems(request_id: Any, label: Any, row: Any) -> list[tuple[str, str]]:
    """(field, message) for each of the three values that is not valid."""
    found = [("request_id", _request_id_problem(request_id)), ("label", _label_problem(label)),
             ("row", _row_problem(row))]
    return [(name, message) for name, message in found if message is not None]


def parse_feedback_body(body: bytes) -> list[Feedback]:
    """The labels of a ``POST /v1/feedback`` body: one ``{"request_id", "label", "row"}``
    object, or ``{"feedback": [...]}`` of them; ``row`` defaults to 0.

    Raises:
        BadRequest: naming every offending field, e.g. ``feedback[3].label``.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest([Problem("body", f"not valid JSON ({exc})")]) from None
    if not isinstance(document, dict):
        raise BadRequest([Problem("body", SHAPES)])
    if "feedback" in document:
        items = document["feedback"]
        problems = [Problem(key, "unknown field next to feedback") for key in sorted(document.keys() - {"feedback"})]
        if not isinstance(items, list) or not items:
            raise BadRequest([Problem("feedback", "must be a non-empty list of objects"), *problems])
        prefixes = [f"feedback[{index}]." for index in range(len(items))]
    else:
        items, prefixes, problems = [document], [""], []
    problems += [problem for item, prefix in zip(items, prefixes) for problem in _item_problems(item, prefix)]
    if problems:
        raise BadRequest(problems)
    now = time.time()
    return [Feedback(request_id=item["request_id"].lower(), row=item.get("row", 0), label=item["label"], time=now)
            for item in items]


def _item_problems(item: Any, prefix: str) -> list[Problem]:
    if not isinstance(item, dict):
        return [Problem(prefix.rstrip(".") or "body", f"must be an object; {SHAPES}")]
    found = [Problem(f"{prefix}{key}", f"unknown field (expected {', '.join(FIELDS)})")
             for key in sorted(item.keys() - set(FIELDS))]
    found += [Problem(f"{prefix}{key}", "is required") for key in ("request_id", "label") if key not in item]
    found += [Problem(f"{prefix}{name}", message)
              for name, message in _problems(item.get("request_id"), item.get("label"), item.get("row", 0))
              if name in item]
    return found


def _upsert(dialect: Dialect) -> Any:
    insert = dialect.insert(prediction_feedback).values({name: bindparam(name) for name in COLUMNS})
    return insert.on_conflict_do_update(
        index_elements=[prediction_feedback.c.request_id, prediction_feedback.c.row],
        set_={"label": insert.excluded.label, "time": insert.excluded.time},
        where=prediction_feedback.c.time <= insert.excluded.time,
    )


class FeedbackService:
    """Labels by (request id, row) in the metadata store."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    def record(self, items: Sequence[Feedback]) -> int:
        """Store ``items`` in one transaction; for a (request id, row) labelled several
        times the newest wins (the last given, on a tie). Returns how many were given.

        Raises:
            ValidationError: an item's request id, label or row is invalid (named by position).
        """
        newest: dict[tuple[str, int], Feedback] = {}
        for position, item in enumerate(items):
            if found := _problems(item.request_id, item.label, item.row):
                name, message = found[0]
                raise ValidationError(f"feedback[{position}].{name}: {message}", field=name)
            key = (item.request_id.lower(), item.row)
            if key not in newest or item.time >= newest[key].time:
                newest[key] = item
        rows = [(request_id, row, orjson.dumps(item.label).decode(), round(item.time * 1000))
                for (request_id, row), item in newest.items()]
        with self.store.write() as conn:
            for start in range(0, len(rows), CHUNK_ROWS):
                self.store.execute_many(conn, "upsert prediction_feedback", _upsert, COLUMNS,
                                        rows[start:start + CHUNK_ROWS])
        return len(items)

    def get(self, request_id: str) -> list[Feedback]:
        """The labels recorded for a request, by row (empty if none)."""
        table = prediction_feedback.c
        with self.store.read() as conn:
            rows = conn.execute(select(prediction_feedback).where(table.request_id == request_id.lower())
                                .order_by(table.row)).all()
        return [Feedback(request_id=r.request_id, row=r.row, label=r.label, time=r.time / 1000) for r in rows]

    def between(self, first_request_id: str, last_request_id: str) -> pa.Table:
        """Labels of the requests with ids in ``[first, last]`` (ids grow with time, so this
        is the feedback of a time window), as columns request_id, row, label (text:
        strings as they are, other JSON values as JSON) and label_time."""
        table = prediction_feedback.c
        query = select(table.request_id, table.row, table.label, table.time).where(
            table.request_id >= first_request_id.lower(), table.request_id <= last_request_id.lower())
        with self.store.read() as conn:
            rows = conn.execute(query).all()
        return pa.table({
            "request_id": pa.array([r.request_id for r in rows], pa.string()),
            "row": pa.array([r.row for r in rows], pa.int64()),
            "label": pa.array([r.label if isinstance(r.label, str) else orjson.dumps(r.label).decode() for r in rows],
                              pa.string()),
            "label_time": pa.array([r.time for r in rows], pa.timestamp("ms", tz="UTC")),
        })

    def count(self) -> int:
        """How many (request id, row) pairs have a label."""
        with self.store.read() as conn:
            return int(conn.execute(select(func.count()).select_from(prediction_feedback)).scalar_one())

    def ingest_file(self, path: str | Path, request_id_column: str = "request_id", label_column: str = "label",
                    row_column: str = "row") -> int:
        """Record the labels of a CSV or Parquet file, all or none; a file without
        ``row_column`` labels row 0 of each request. Returns how many labels it held.

        Raises:
            NotFound: there is no such file.
            ValidationError: the file is unreadable, lacks a column, or a row is invalid; the
                message names the file, the line (CSV) or 0-based row (Parquet), and the column.
        """
        path = Path(path)
        table, where = _read_labels(path, request_id_column)
        for column in (request_id_column, label_column):
            if column not in table.column_names:
                raise ValidationError(f"{path}: no column {column!r} (columns: {', '.join(table.column_names)})",
                                      field=column)
        ids, labels = table[request_id_column].to_pylist(), table[label_column].to_pylist()
        rows = table[row_column].to_pylist() if row_column in table.column_names else [0] * len(ids)
        columns = {"request_id": request_id_column, "label": label_column, "row": row_column}
        for index, values in enumerate(zip(ids, labels, rows)):
            if found := _problems(*values):
                name, message = found[0]
                raise ValidationError(f"{path} {where(index)}, column {columns[name]!r}: {message}",
                                      field=columns[name])
        now = time.time()
        return self.record([Feedback(request_id=request_id, row=row, label=label, time=now)
                            for request_id, label, row in zip(ids, labels, rows)])


def _read_labels(path: Path, request_id_column: str) -> tuple[pa.Table, Any]:
    """The file as an Arrow table, and how to name its i-th row in a message."""
    if not path.is_file():
        raise NotFound(f"feedback file {path} does not exist", field="file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            options = pacsv.ConvertOptions(column_types={request_id_column: pa.string()}, strings_can_be_null=True)
            return pacsv.read_csv(path, convert_options=options), lambda index: f"line {index + 2}"
        if suffix in (".parquet", ".pq"):
            return pq.read_table(path), lambda index: f"row {index}"
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValidationError(f"{path}: cannot read it as {suffix[1:]}: {str(exc).splitlines()[0]}",
                              field="file") from exc
    raise ValidationError(f"{path}: expected a .csv or .parquet file", field="file")
