"""What a monitoring report shows, gathered from stored results: the newest run's
drift per column with both distributions, its data quality, every series over time
and the alerts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conveyor.core.db.base import now_ms
from conveyor.monitoring.detail import drift_rows
from conveyor.monitoring.windows import iso

if TYPE_CHECKING:
    from conveyor.monitoring.service import MonitoringService

SERIES_CHECKS = ("dataset_drift", "prediction_drift", "model_quality", "operations", "business", "freshness", "volume")
SKIPPED_STATISTICS = ("drifted", "labelled_rows")


def report_data(service: MonitoringService, model: str) -> dict[str, Any]:
    """The report's content for a model (``NAME``, ``NAME@ALIAS`` or ``NAME/VERSION``)."""
    name = model.split("@")[0].split("/")[0]
    run = service.results.latest_run(name)
    history = service.history(name)
    points = service.results.points(run["id"])
    quality = [{"column": p.column, "check": p.statistic, "reference": p.threshold, "current": p.value,
                "status": p.status} for p in points if p.check == "data_quality"]
    labelled = next((int(p.value) for p in points if p.metric == "model_quality.labelled_rows"), None)
    series = []
    chosen = history[history["check"].isin(SERIES_CHECKS) & ~history["statistic"].isin(SKIPPED_STATISTICS)]
    for (check, statistic, column), group in chosen.groupby(["check", "statistic", "column"], sort=True):
        series.append({"metric": f"{check}.{statistic}", "column": column, "points": [
            {"window_end": iso(int(p["window_end"].timestamp() * 1000)), "value": p["value"],
             "threshold": p["threshold"], "status": p["status"]} for p in group.to_dict("records")]})
    detail = service.detail(run)
    return {
        "model": name, "version": run["version"], "generated_at": iso(now_ms()),
        "window": {"start": iso(run["window_start"]), "end": iso(run["window_end"])},
        "summary": {**run["summary"], "labelled_rows": labelled},
        "drift": detail.get("drift", []) + detail.get("prediction_drift", []),
        "quality": quality, "series": series, "alerts": _alerts(service, name),
    }


def drift_report_data(reference: Any, current: Any, **options: Any) -> dict[str, Any]:
    """The report's content for two data sets compared ad hoc (``options`` as for
    ``DriftOptions``: tests, thresholds, drift_share)."""
    from conveyor.monitoring.drift import (
        DriftOptions,
        compare,
        profile_current,
        profile_reference,
    )

    base = profile_reference(reference)
    found = profile_current(base, current)
    table = compare(base, found, DriftOptions(**options))
    return {
        "model": "ad hoc comparison", "generated_at": iso(now_ms()),
        "summary": {"rows": found.rows, "reference_rows": base.rows, "columns": len(table),
                    "drifted_columns": table.attrs["drifted_columns"], "share_drifted": table.attrs["share_drifted"],
                    "dataset_drift": table.attrs["dataset_drift"]},
        "drift": drift_rows(table, base, found),
    }


def _alerts(service: MonitoringService, model: str) -> list[dict[str, Any]]:
    alerts = service.alerts
    rules = {rule.name: rule for rule in alerts.list_rules()}
    rows = []
    for state in alerts.states(model):
        rule = rules.get(state.rule)
        if rule is None:
            continue
        condition = f"{rule.op} {rule.threshold}" if rule.op else f"status {rule.status}"
        rows.append({"rule": state.rule, "severity": rule.severity, "state": state.state, "metric": rule.metric,
                     "value": state.value, "since": iso(state.since),
                     "message": f"{rule.metric}{f' [{rule.column}]' if rule.column else ''} {condition}"})
    return rows

