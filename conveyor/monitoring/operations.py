"""Operations: latency percentiles, throughput and errors per deployment and version.

Latency and throughput come from the prediction log (one latency per request);
errors are never logged as predictions, so the error rate comes from a server's
Prometheus ``/metrics`` (cumulative since that server started).
"""

from __future__ import annotations

import duckdb
import httpx
from prometheus_client.parser import text_string_to_metric_families

from conveyor.errors import Unavailable
from conveyor.monitoring.results import Point
from conveyor.monitoring.windows import Window

CHECK = "operations"


def operations(con: duckdb.DuckDBPyConnection, window: Window) -> list[Point]:
    """Points per deployment (column: the deployment's name, or ``direct`` for
    ``/v1/models`` calls): p50/p95/p99 latency, requests and rows per second."""
    rows = con.execute("""
        SELECT coalesce(deployment, 'direct') AS deployment,
               count(*) FILTER (WHERE "row" = 0) AS requests, count(*) AS rows,
               quantile_cont(latency_ms, [0.5, 0.95, 0.99]) FILTER (WHERE "row" = 0) AS latency
        FROM predictions WHERE NOT coalesce(shadow, false) GROUP BY ALL ORDER BY 1""").fetchall()
    points: list[Point] = []
    for deployment, requests, count, latency in rows:
        p50, p95, p99 = latency or (None, None, None)
        points += [
            Point(CHECK, "p50_latency_ms", p50, "info", deployment, rows=requests),
            Point(CHECK, "p95_latency_ms", p95, "info", deployment, rows=requests),
            Point(CHECK, "p99_latency_ms", p99, "info", deployment, rows=requests),
            Point(CHECK, "requests_per_s", requests / window.seconds, "info", deployment, rows=requests),
            Point(CHECK, "rows_per_s", count / window.seconds, "info", deployment, rows=count),
        ]
    return points


def server_errors(url: str, model: str, timeout_s: float = 5.0) -> list[Point]:
    """Error rate of ``model``'s requests on a running server, read from its /metrics.

    Raises:
        Unavailable: the server cannot be reached.
    """
    try:
        text = httpx.get(url.rstrip("/") + ("" if url.endswith("/metrics") else "/metrics"), timeout=timeout_s).text
    except httpx.HTTPError as error:
        raise Unavailable(f"cannot read server metrics at {url}: {error}", field="metrics_url") from error
    total = failed = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != "conveyor_requests":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels.get("model") == model:
                total += sample.value
                failed += sample.value if not sample.labels.get("status", "200").startswith("2") else 0.0
    rate = failed / total if total else None
    return [Point(CHECK, "error_rate", rate, "info", "server", rows=int(total)),
            Point(CHECK, "requests_total", total, "info", "server", rows=int(total))]
