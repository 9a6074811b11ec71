"""Moving the latest value per entity of one view into the online store.

The rows of a window ``(start, end]`` are reduced to the newest per entity in DuckDB,
staged in the online store batch by batch, then committed in one atomic step: a process
killed before the commit leaves the online values as they were, and running again
finishes the work. The online store's timestamp guard keeps a backfill of an older
window from moving a value back in time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conveyor.features.definitions import FeatureView
from conveyor.features.dtypes import DUCKDB_TYPES
from conveyor.features.engine import describe, timestamp_expr, view_sql
from conveyor.features.online import OnlineStore, OnlineTable
from conveyor.features.sources import SourceContext, quote
from conveyor.features.statistics import compute_statistics

KEY_SEPARATOR = "\x1f"
BATCH_ROWS = 50_000


def online_table(view: FeatureView, version: int) -> OnlineTable:
    """Where one version of a view lives online: a new version gets a fresh table."""
    return OnlineTable(f"{view.name.lower()}__v{version}", tuple((f.name, f.dtype) for f in view.features))


def encode_key(values: tuple[Any, ...]) -> str:
    """The online key of one entity: its join key values as text (the SQL side matches)."""
    return values[0].__str__() if len(values) == 1 else KEY_SEPARATOR.join(map(str, values))


def _key_sql(keys: tuple[str, ...]) -> str:
    casts = [f"CAST({quote(k)} AS VARCHAR)" for k in keys]
    return casts[0] if len(casts) == 1 else f"concat_ws(chr(31), {', '.join(casts)})"


def _value_sql(name: str, dtype: str) -> str:
    cast = f"CAST({quote(name)} AS {DUCKDB_TYPES[dtype]})"
    return f"epoch_us({cast}) AS {quote(name)}" if dtype == "timestamp" else f"{cast} AS {quote(name)}"


@dataclass
class MaterializedWindow:
    """What one view's materialisation read and wrote."""

    rows_read: int
    rows_written: int
    newest_event_us: int | None
    statistics: dict[str, dict[str, Any]]  # of the values this run put online (the newest per entity)


def materialize_view(
    context: SourceContext,
    view: FeatureView,
    join_keys: tuple[str, ...],
    online: OnlineStore,
    table: OnlineTable,
    job: str,
    window: tuple[int | None, int],
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> MaterializedWindow:
    """Stage and commit the newest row per entity of ``view`` with a timestamp in ``(start, end]``
    (epoch microseconds; no start: from the beginning)."""
    types = describe(view, context)
    stamp = timestamp_expr(view.timestamp_field, types[view.timestamp_field])
    start, end = window
    bounds = [f"{stamp} <= make_timestamp({end})", f"{stamp} IS NOT NULL"]
    if start is not None:
        bounds.append(f"{stamp} > make_timestamp({start})")
    rows = f"(SELECT * FROM {view_sql(view, context)} WHERE {' AND '.join(bounds)})"
    order = f"{stamp} DESC" + (f", {quote(view.created_timestamp_field)} DESC NULLS LAST" if view.created_timestamp_field else "")
    not_null = " AND ".join(f"{quote(k)} IS NOT NULL" for k in join_keys)
    latest = f"__latest_{job}"
    context.con.execute(
        f"CREATE OR REPLACE TEMP TABLE {latest} AS SELECT {_key_sql(join_keys)} AS __key, epoch_us({stamp}) AS __ts, "
        f"{', '.join(_value_sql(f.name, f.dtype) for f in view.features)} FROM {rows} WHERE {not_null} "
        f"QUALIFY row_number() OVER (PARTITION BY {', '.join(quote(k) for k in join_keys)} ORDER BY {order}) = 1"
    )
    try:
        total, newest = context.con.sql(f"SELECT count(*), max(__ts) FROM {latest}").fetchall()[0]
        reader = context.con.sql(f"SELECT * FROM {latest}").to_arrow_reader(BATCH_ROWS)
        done = 0
        for batch in reader:
            online.stage(table, job, batch)
            done += batch.num_rows
            progress(done, total)
        written = online.commit(table, job)
        stamps = [quote(f.name) for f in view.features if f.dtype == "timestamp"]
        served = f"(SELECT * REPLACE ({', '.join(f'make_timestamp({c}) AS {c}' for c in stamps)}) FROM {latest})" \
            if stamps else latest
        statistics = compute_statistics(context, served, [(f.name, f.dtype) for f in view.features])
    except BaseException:
        online.discard(table, job)
        raise
    finally:
        context.con.execute(f"DROP TABLE IF EXISTS {latest}")
    rows_read = context.con.sql(f"SELECT count(*) FROM {rows}").fetchall()[0][0]
    return MaterializedWindow(rows_read, written, newest, statistics)
