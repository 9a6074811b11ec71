"""The monitoring service of a remote workspace: the same interface, over the server's API.

Checks run on the server, next to the prediction log. Files named here (``data`` of a run,
the training data of a reference) are files on the server; a DataFrame reference is sent
as Arrow IPC. Alert rules are checked here and sent with their webhook secrets (over the
authenticated connection); the server never answers a secret back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from conveyor.errors import ValidationError
from conveyor.monitoring.alerts import AlertEvent, AlertRule, AlertService, load_rules
from conveyor.monitoring.api import (
    ALERT_ENDPOINTS,
    BUSINESS_ENDPOINTS,
    ENDPOINTS,
    EVENTS,
    PROFILE,
    RESULT_ENDPOINTS,
    RUNS,
)
from conveyor.monitoring.business import BusinessMetrics
from conveyor.monitoring.drift import DriftOptions
from conveyor.monitoring.reference import ReferenceProfile
from conveyor.monitoring.results import MonitorRun, ResultStore
from conveyor.monitoring.service import MIN_LABELS, MonitoringService, Progress
from conveyor.registry.schemas import ModelVersion
from conveyor.server.client import RemoteService, ServerClient
from conveyor.server.frames import ARROW, arrow_bytes, read_frame


def _model_path(model: str) -> str:
    return f"/monitoring/models/{quote(model, safe='/@')}"


def _time(value: Any) -> Any:
    """A time as the server reads it: ISO 8601 (epoch seconds and datetimes converted)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC).isoformat()
    return value.isoformat() if isinstance(value, datetime) else value


def _server_file(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, (str, Path)):
        return str(value)
    raise ValidationError(f"{field} cannot be sent to a server as {type(value).__name__}: name a file on the server",
                          field=field)


class RemoteAlerts(RemoteService):
    """``AlertService`` over HTTP."""

    service_type = AlertService
    prefix = ""
    endpoints = ALERT_ENDPOINTS

    def put_rule(self, rule: AlertRule) -> AlertRule:
        """Create or replace a rule on the server; the answer masks its webhook secrets."""
        response = self.client.request("PUT", f"/monitoring/alert-rules/{quote(rule.name, safe='')}", json=rule.stored())
        return AlertRule.model_validate_json(response.content)

    def apply_file(self, path: str | Path) -> list[AlertRule]:
        """Check every rule of a YAML file here (errors name the file and the rule), then put each on the server."""
        rules = load_rules(path)
        return [self.put_rule(rule) for rule in rules]


class RemoteBusinessMetrics(RemoteService):
    """``BusinessMetrics`` over HTTP (definitions are checked and stored by ``define_metric``)."""

    service_type = BusinessMetrics
    prefix = ""
    endpoints = BUSINESS_ENDPOINTS


class RemoteResults(RemoteService):
    """``ResultStore`` reads over HTTP."""

    service_type = ResultStore
    prefix = ""
    endpoints = RESULT_ENDPOINTS


class RemoteMonitoring(RemoteService):
    """``MonitoringService`` over HTTP."""

    service_type = MonitoringService
    prefix = ""
    endpoints = ENDPOINTS

    def __init__(self, client: ServerClient) -> None:
        super().__init__(client)
        self.alerts = RemoteAlerts(client)
        self.business = RemoteBusinessMetrics(client)
        self.results = RemoteResults(client)

    def run(self, model: str, window: str | None = None, since: Any = None, until: Any = None, step: str | None = None,
            data: Any = None, options: DriftOptions | None = None, metrics_url: str | None = None,
            min_labels: int = MIN_LABELS, progress: Progress | None = None) -> list[MonitorRun]:
        """Run the checks on the server; ``progress`` hears of each window once all have run."""
        body = {"window": window, "since": _time(since), "until": _time(until), "step": step,
                "data": _server_file(data, "data"), "metrics_url": metrics_url, "min_labels": min_labels,
                "options": None if options is None else {"tests": dict(options.tests),
                                                         "thresholds": dict(options.thresholds),
                                                         "drift_share": options.drift_share}}
        response = self.client.request("POST", f"{_model_path(model)}/runs", json=body)
        runs = RUNS.validate_json(response.content)
        for position, found in enumerate(runs):
            if progress is not None:
                progress(position + 1, len(runs), found.window)
        return runs

    def evaluate_alerts(self, model: str) -> list[AlertEvent]:
        """Evaluate on the server the alert rules that watch ``model``."""
        return EVENTS.validate_json(self.client.request("POST", f"{_model_path(model)}/alert-evaluations").content)

    def history(self, model: str, metric: str | None = None, column: str | None = None,
                since: Any = None, until: Any = None) -> pd.DataFrame:
        """Stored points of a model's series, in window order."""
        params = {key: value for key, value in {"metric": metric, "column": column, "since": _time(since),
                                                "until": _time(until)}.items() if value is not None}
        response = self.client.request("GET", f"{_model_path(model)}/history", params=params, headers={"accept": ARROW})
        return read_frame(response)

    def reference(self, version: ModelVersion) -> ReferenceProfile:
        """The version's reference profile, as stored on the server."""
        response = self.client.request("GET", f"{_model_path(f'{version.model}/{version.version}')}/reference",
                                       headers={"accept": PROFILE})
        return ReferenceProfile.from_bytes(response.content)

    def set_reference(self, model: str, data: Any) -> ReferenceProfile:
        """Profile training data as a version's reference: a DataFrame (sent from here), or a file on the server."""
        if isinstance(data, pd.DataFrame):
            options: dict[str, Any] = {"content": arrow_bytes(data), "headers": {"content-type": ARROW, "accept": PROFILE}}
        else:
            options = {"json": {"path": _server_file(data, "data")}, "headers": {"accept": PROFILE}}
        response = self.client.request("PUT", f"{_model_path(model)}/reference", **options)
        return ReferenceProfile.from_bytes(response.content)
