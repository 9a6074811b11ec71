"""Deployments: the traffic policy (variants, weights, shadows, the versions they resolve
to), the revision history, and live traffic.

Latency and request counts come from the prediction log, which records every answered
request with its variant and latency (read here with DuckDB, bucketed over the chosen
period). Errors are never logged as predictions: their rate lives in each server's
Prometheus ``/metrics`` and reaches the metadata store only as the monitoring series
``operations.error_rate``, which is charted when monitoring has recorded it.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import duckdb
from fastapi import APIRouter, Request
from fastapi.responses import Response

from conveyor.serving.deployments import Deployment
from conveyor.ui import charts
from conveyor.ui.rendering import is_htmx, render
from conveyor.ui.routing import page_router, workspace_of

PERIODS = {"1h": 3_600, "6h": 21_600, "24h": 86_400, "7d": 604_800}
BUCKETS = 48
LOOKBACK_DAYS = 35
"""How far back the newest logged request of a deployment is looked for."""


def traffic(request: Request, deployment: Deployment, period: str) -> dict[str, Any]:
    """Requests and p50/p95 latency per variant over ``period``, ending at the newest logged request."""
    seconds = PERIODS.get(period, PERIODS["24h"])
    index = workspace_of(request).monitoring.index
    files = [f for f in index.files(deployment.spec.model, since=time.time() - LOOKBACK_DAYS * 86_400)
             if f.deployment == deployment.name]
    if not files:
        return {"empty": True, "message": f"No prediction of this deployment was logged in the last {LOOKBACK_DAYS} days."}
    end = min(time.time(), max(f.last_time for f in files)) + 1
    start = end - seconds
    paths = [f.path for f in files if f.last_time >= start]
    if not paths:
        return {"empty": True, "message": f"No prediction in the last {period} of logged traffic."}
    bucket = max(60, seconds // BUCKETS)
    con = duckdb.connect()
    try:
        rows = con.execute(
            """SELECT floor(epoch(time) / $bucket) * $bucket AS bucket_start,
                      variant || CASE WHEN coalesce(shadow, false) THEN ' (shadow)' ELSE '' END AS variant,
                      count(*) FILTER (WHERE "row" = 0) AS requests,
                      quantile_cont(latency_ms, 0.5) FILTER (WHERE "row" = 0) AS p50,
                      quantile_cont(latency_ms, 0.95) FILTER (WHERE "row" = 0) AS p95
               FROM read_parquet($paths, union_by_name = true)
               WHERE time >= to_timestamp($start) AND time < to_timestamp($end)
               GROUP BY ALL ORDER BY bucket_start""",
            {"bucket": bucket, "paths": paths, "start": start, "end": end},
        ).fetchall()
    except duckdb.Error as error:
        return {"empty": True, "message": f"The prediction log cannot be read from the server: {str(error).splitlines()[0]}"}
    finally:
        con.close()
    by_variant: dict[str, dict[str, list[Any]]] = {}
    for seconds_at, variant, requests, p50, p95 in rows:
        series = by_variant.setdefault(variant or "direct", {"at": [], "requests": [], "p50": [], "p95": []})
        at = dt.datetime.fromtimestamp(seconds_at, dt.UTC).isoformat()
        for key, value in (("at", at), ("requests", requests), ("p50", p50), ("p95", p95)):
            series[key].append(value)
    latency = {f"{name} {q}": (s["at"], s[q]) for name, s in by_variant.items() for q in ("p50", "p95")}
    volume = {name: (s["at"], [r / (bucket / 60) for r in s["requests"]]) for name, s in by_variant.items()}
    totals = {name: sum(s["requests"]) for name, s in by_variant.items()}
    return {
        "empty": False, "start": start * 1000, "end": end * 1000, "totals": totals,
        "latency": charts.lines(latency, title="Latency (ms)", y_title="ms", markers=False),
        "volume": charts.lines(volume, title="Requests per minute", y_title="req/min", markers=False),
    }


def error_rates(request: Request, deployment: Deployment) -> dict[str, Any] | None:
    """The monitoring series ``operations.error_rate`` of the deployment's model, if monitoring recorded it."""
    history = workspace_of(request).monitoring.history(deployment.spec.model, "operations.error_rate")
    if history.empty:
        return None
    return charts.lines({"error rate": (history["window_end"].tolist(), history["value"].tolist())},
                        title="Error rate (from server /metrics, per monitoring window)", y_title="share of requests")


def build_router() -> APIRouter:
    router = page_router()

    @router.get("/deployments")
    def deployments(request: Request) -> Response:
        found = workspace_of(request).deployments.list()
        return render(request, "deployments.html", section="deployments", deployments=found)

    @router.get("/deployments/{name}")
    def deployment(request: Request, name: str, period: str = "24h") -> Response:
        service = workspace_of(request).deployments
        current = service.get(name)
        period = period if period in PERIODS else "24h"
        live = traffic(request, current, period)
        if is_htmx(request):
            return render(request, "_traffic.html", deployment=current, live=live, period=period, periods=PERIODS)
        return render(request, "deployment.html", section="deployments", deployment=current,
                      history=service.history(name)[::-1], live=live, period=period, periods=PERIODS,
                      errors=error_rates(request, current))

    return router
