"""Distribution of each feature over the values a materialisation put online (the newest
per entity): what serving reads, so the reference monitoring compares live traffic with.

Numbers get count, nulls, min/max/mean/std and quantiles; strings and booleans get their
most frequent values; timestamps their range. All in one DuckDB pass per kind.
"""

from __future__ import annotations

from typing import Any

from conveyor.features.sources import SourceContext, quote

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
TOP = 10
_NUMERIC = {"int64", "int32", "float64", "float32"}


def _numeric_exprs(name: str) -> list[str]:
    col = quote(name)
    value = f"CASE WHEN isnan({col}::DOUBLE) THEN NULL ELSE {col}::DOUBLE END"
    return [
        f"count({col})", f"min({value})", f"max({value})", f"avg({value})", f"stddev_samp({value})",
        f"approx_quantile({value}, [{', '.join(map(str, QUANTILES))}])",
    ]


def compute_statistics(context: SourceContext, rows_sql: str, features: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """Statistics of each (feature, dtype) over the rows of ``rows_sql`` (a ``FROM`` expression)."""
    exprs = ["count(*)"]
    layout: list[tuple[str, str, int]] = []
    for name, dtype in features:
        start = len(exprs)
        if dtype in _NUMERIC:
            exprs += _numeric_exprs(name)
        elif dtype == "timestamp":
            exprs += [f"count({quote(name)})", f"min({quote(name)})::VARCHAR", f"max({quote(name)})::VARCHAR"]
        else:
            exprs += [f"count({quote(name)})", f"approx_count_distinct({quote(name)})"]
        layout.append((name, dtype, start))
    row = context.con.sql(f"SELECT {', '.join(exprs)} FROM {rows_sql}").fetchall()[0]
    assert row is not None
    total = int(row[0])
    stats: dict[str, dict[str, Any]] = {}
    for name, dtype, start in layout:
        present = int(row[start])
        entry: dict[str, Any] = {"dtype": dtype, "count": total, "nulls": total - present}
        if dtype in _NUMERIC:
            low, high, mean, std, quantiles = row[start + 1: start + 6]
            entry.update(min=low, max=high, mean=mean, std=std,
                         quantiles=dict(zip(map(str, QUANTILES), quantiles)) if quantiles else None)
        elif dtype == "timestamp":
            entry.update(min=row[start + 1], max=row[start + 2])
        else:
            entry.update(distinct=int(row[start + 1]), top=_top(context, rows_sql, name))
        stats[name] = entry
    return stats


def _top(context: SourceContext, rows_sql: str, name: str) -> list[dict[str, Any]]:
    col = quote(name)
    rows = context.con.sql(
        f"SELECT {col}::VARCHAR, count(*) AS n FROM {rows_sql} WHERE {col} IS NOT NULL GROUP BY 1 ORDER BY n DESC, 1 LIMIT {TOP}"
    ).fetchall()
    return [{"value": value, "count": int(count)} for value, count in rows]
