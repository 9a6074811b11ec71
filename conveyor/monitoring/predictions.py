"""A window of the prediction log as DuckDB views: what monitoring reads.

``predictions``: one row per predicted row of one model version in the window, with
the log's columns (request_id, row, time, deployment, version, variant, shadow,
latency_ms, prediction, score) and the model's inputs by their own names (a feature
fetched from the store wins over the same name sent by the client).
``feedback``: the labels of those requests (request_id, row, label, label_time).
``labelled``: predictions joined with their labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import duckdb
import pyarrow as pa

from conveyor.monitoring.sources import quote
from conveyor.monitoring.windows import Window
from conveyor.serving.feedback import FeedbackService

LOG_TYPES = {"request_id": "VARCHAR", "row": "BIGINT", "time": "TIMESTAMPTZ", "deployment": "VARCHAR",
             "version": "BIGINT", "variant": "VARCHAR", "shadow": "BOOLEAN", "latency_ms": "DOUBLE",
             "prediction": "VARCHAR", "score": "DOUBLE"}
INPUT, FEATURE = "input.", "feature."
EMPTY_FEEDBACK = pa.schema([("request_id", pa.string()), ("row", pa.int64()), ("label", pa.string()),
                            ("label_time", pa.timestamp("ms", tz="UTC"))])


def model_columns(names: Sequence[str]) -> dict[str, str]:
    """Model input name -> the log column holding it."""
    found = {name[len(INPUT):]: name for name in names if name.startswith(INPUT)}
    found.update({name[len(FEATURE):]: name for name in names if name.startswith(FEATURE)})
    return found


def empty_views(con: duckdb.DuckDBPyConnection, inputs: Mapping[str, str]) -> None:
    """The views with no rows: the log's columns and ``inputs`` (name -> DuckDB type), for
    a window nothing was logged in, or to check a query against."""
    columns = ", ".join(f"{quote(name)} {kind}" for name, kind in {**LOG_TYPES, **inputs}.items())
    con.execute(f"CREATE OR REPLACE TEMP TABLE predictions ({columns})")
    _feedback_views(con, EMPTY_FEEDBACK.empty_table())


def _feedback_views(con: duckdb.DuckDBPyConnection, labels: pa.Table) -> None:
    con.register("feedback", labels)
    con.execute("CREATE OR REPLACE TEMP VIEW labelled AS SELECT p.*, f.label, f.label_time FROM predictions p "
                "JOIN feedback f USING (request_id, row)")


def open_window(con: duckdb.DuckDBPyConnection, files: Sequence[str], version: int | None, window: Window,
                feedback: FeedbackService | None) -> int:
    """Create the views of ``window`` on ``con``; returns the number of predicted rows."""
    if not files:
        empty_views(con, {})
        return 0
    source = con.read_parquet(list(files), union_by_name=True)
    names = source.columns
    fixed = [quote(n) if n in names else f"NULL AS {quote(n)}" for n in LOG_TYPES]
    renamed = [f"{quote(column)} AS {quote(name)}" for name, column in model_columns(names).items()
               if name not in LOG_TYPES]
    where = [f"time >= to_timestamp({window.start / 1000})", f"time < to_timestamp({window.end / 1000})"]
    if version is not None:
        where.append(f"version = {int(version)}")
    source.create_view("prediction_files")
    con.execute(f"CREATE OR REPLACE TEMP TABLE predictions AS SELECT {', '.join(fixed + renamed)} "
                f"FROM prediction_files WHERE {' AND '.join(where)}")
    rows, first, last = con.execute("SELECT count(*), min(request_id), max(request_id) FROM predictions").fetchall()[0]
    _feedback_views(con, feedback.between(first, last) if feedback is not None and rows else EMPTY_FEEDBACK.empty_table())
    return int(rows)
