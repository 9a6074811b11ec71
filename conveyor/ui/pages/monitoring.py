"""Monitoring: which models are watched and how they fare; per model, drift per column over
time, the newest window's drift and data quality, quality and other series over time, and
alerts. The content is the monitoring report's (``monitoring.reporting.report_data``) and
so are the per-column and per-series figures, drawn here interactively."""

from __future__ import annotations

from typing import Any

import pandas as pd
from fastapi import APIRouter, Request
from fastapi.responses import Response

from conveyor.errors import NotFound
from conveyor.monitoring.report import (  # the report's figures, shared
    drift_figure,
    series_figure,
)
from conveyor.monitoring.reporting import report_data
from conveyor.ui import charts
from conveyor.ui.rendering import render
from conveyor.ui.routing import page_router, workspace_of

DRIFT_CHECKS = ("data_drift", "prediction_drift")
MAX_DRIFT_CHARTS = 30
MAX_WINDOWS = 60


def drift_over_time(history: pd.DataFrame) -> dict[str, Any] | None:
    """A heatmap of columns against windows: red where the column drifted, with the test's value on hover."""
    drift = history[history["check"].isin(DRIFT_CHECKS)]
    if drift.empty:
        return None
    flags = drift[drift["statistic"] == "drifted"]
    tests = drift[drift["statistic"] != "drifted"].set_index(["check", "column", "window_end"])
    windows = sorted(flags["window_end"].unique())[-MAX_WINDOWS:]
    columns = sorted(flags[["check", "column"]].drop_duplicates().itertuples(index=False, name=None),
                     key=lambda item: (item[0] != "data_drift", item[1]))
    lookup = flags.set_index(["check", "column", "window_end"])["value"]
    z, text = [], []
    for check, column in columns:
        row_z, row_text = [], []
        for window in windows:
            value = lookup.get((check, column, window))
            row_z.append(None if value is None or pd.isna(value) else float(value))
            detail = tests.loc[(check, column, window)] if (check, column, window) in tests.index else None
            if isinstance(detail, pd.DataFrame):
                detail = detail.iloc[-1]
            row_text.append(_cell_text(column, window, row_z[-1], detail))
        z.append(row_z)
        text.append(row_text)
    labels = [f"{column}" if check == "data_drift" else f"{column} (output)" for check, column in columns]
    stamps = [pd.Timestamp(w) for w in windows]
    daily = all(stamp.hour == 0 and stamp.minute == 0 for stamp in stamps)
    names = [stamp.strftime("%b %d" if daily else "%b %d %H:%M") for stamp in stamps]
    figure = charts.heatmap(names, labels, z, text)
    figure["layout"]["yaxis"]["autorange"] = "reversed"
    figure["layout"]["xaxis"].update(type="category", title={"text": "window end (UTC)"})
    return {"figure": figure, "height": max(160, 34 * len(labels) + 70)}


def _cell_text(column: str, window: Any, drifted: float | None, detail: Any) -> str:
    when = pd.Timestamp(window).strftime("%Y-%m-%d %H:%M")
    state = "no data" if drifted is None else "drifted" if drifted else "stable"
    if detail is None:
        return f"{column} · window ending {when}<br>{state}"
    threshold = "" if pd.isna(detail["threshold"]) else f" (threshold {detail['threshold']:.3g})"
    return f"{column} · window ending {when}<br>{state}: {detail['statistic']} = {detail['value']:.3g}{threshold}"


def monitored_models(request: Request) -> list[dict[str, Any]]:
    """Every registered model with its newest monitoring run and firing alerts (unmonitored ones last)."""
    ws = workspace_of(request)
    firing: dict[str, int] = {}
    for state in ws.monitoring.alerts.states():
        if state.state == "firing":
            firing[state.model] = firing.get(state.model, 0) + 1
    found = []
    for model in ws.registry.list_registered_models():
        try:
            latest = ws.monitoring.results.latest_run(model.name)
        except NotFound:
            latest = None
        found.append({"model": model, "latest": latest, "firing": firing.get(model.name, 0)})
    return sorted(found, key=lambda item: (item["latest"] is None, -item["firing"], item["model"].name))


def build_router() -> APIRouter:
    router = page_router()

    @router.get("/monitoring")
    def monitoring(request: Request) -> Response:
        return render(request, "monitoring.html", section="monitoring", models=monitored_models(request))

    @router.get("/monitoring/{model}")
    def monitoring_model(request: Request, model: str) -> Response:
        service = workspace_of(request).monitoring
        data = report_data(service, model)
        drift = sorted(data["drift"], key=lambda row: (not row.get("drifted"), row.get("column", "")))
        series = [{**item, "figure": series_figure(item)} for item in data["series"]]
        quality = [item for item in series if item["metric"].startswith("model_quality.")]
        other = [item for item in series if not item["metric"].startswith("model_quality.")]
        deliveries = service.alerts.deliveries(model=data["model"])[-10:][::-1]
        return render(request, "monitoring_model.html", section="monitoring", data=data,
                      heatmap=drift_over_time(service.history(data["model"])),
                      drift=[{**row, "figure": drift_figure(row) if i < MAX_DRIFT_CHARTS else None}
                             for i, row in enumerate(drift)],
                      quality_series=quality, other_series=other, deliveries=deliveries)

    return router
