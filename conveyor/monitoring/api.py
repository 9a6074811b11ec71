"""Monitoring over HTTP (``/api/v1/monitoring``): runs of the checks, their stored series,
references, business metrics, alert rules, alert states and deliveries.

A model is ``NAME@ALIAS``, ``NAME/VERSION`` or ``NAME`` where the service resolves a version
(running, references), and ``NAME`` where it reads stored results. Webhook secrets of alert
rules never leave the server: responses mask them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Body, Request, Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from starlette.concurrency import run_in_threadpool

from conveyor.errors import ValidationError
from conveyor.monitoring.alerts import AlertEvent, AlertRule, AlertService, parse_rule
from conveyor.monitoring.business import BusinessMetrics
from conveyor.monitoring.drift import DriftOptions
from conveyor.monitoring.reference import ReferenceProfile
from conveyor.monitoring.results import MonitorRun, ResultStore
from conveyor.monitoring.service import MonitoringService
from conveyor.server.bodies import require
from conveyor.server.endpoints import JSON, Endpoint, add_service_routes, permission_of
from conveyor.server.frames import ARROW, frame_response, read_arrow

ENDPOINTS = (Endpoint("define_metric", "PUT", "/monitoring/metrics/{name}"),)
"""Monitoring methods served as they are; runs, series, references and alert evaluation have routes below."""

RESULT_ENDPOINTS = (Endpoint("runs", "GET", "/monitoring/models/{model:path}/runs"),)
"""Stored monitoring runs (``monitoring.results``) of a model, by name."""

BUSINESS_ENDPOINTS = (
    Endpoint("list", "GET", "/monitoring/metrics"),
    Endpoint("delete", "DELETE", "/monitoring/metrics/{name}"),
)
"""Business metric definitions (``monitoring.business``); ``define_metric`` above checks and stores one."""

ALERT_ENDPOINTS = (
    Endpoint("list_rules", "GET", "/monitoring/alert-rules"),
    Endpoint("get_rule", "GET", "/monitoring/alert-rules/{name}"),
    Endpoint("delete_rule", "DELETE", "/monitoring/alert-rules/{name}"),
    Endpoint("states", "GET", "/monitoring/alert-states"),
    Endpoint("deliveries", "GET", "/monitoring/alert-deliveries"),
    Endpoint("retry_pending", "POST", "/monitoring/alert-deliveries/retry"),
)
"""Alert rules (``monitoring.alerts``), where each stands and what was delivered; a rule is put below."""

PROFILE = "application/octet-stream"
"""What ``Accept`` asks for a reference profile's bytes (``ReferenceProfile.to_bytes``) instead of its summary."""


def monitoring(request: Request) -> MonitoringService:
    """The monitoring service of the server's workspace."""
    return request.app.state.workspace.monitoring


def results(request: Request) -> ResultStore:
    """Stored monitoring runs and series."""
    return monitoring(request).results


def business(request: Request) -> BusinessMetrics:
    """Business metric definitions."""
    return monitoring(request).business


def alerts(request: Request) -> AlertService:
    """Alert rules, states and deliveries."""
    return monitoring(request).alerts


router = APIRouter(tags=["monitoring"])
add_service_routes(router, MonitoringService, monitoring, ENDPOINTS)
add_service_routes(router, ResultStore, results, RESULT_ENDPOINTS)
add_service_routes(router, BusinessMetrics, business, BUSINESS_ENDPOINTS)
add_service_routes(router, AlertService, alerts, ALERT_ENDPOINTS)


# runs and series ---------------------------------------------------------------------------

class MonitorRequest(BaseModel):
    """What to check: the windows (``MonitoringService.run``'s arguments), or a file instead of the log."""

    model_config = ConfigDict(extra="forbid")

    window: str | None = Field(default=None, description="Window length: 30m, 6h, 1d, 1w.")
    since: str | float | None = Field(default=None, description="Start of the range: ISO 8601 or epoch seconds.")
    until: str | float | None = Field(default=None, description="End of the range (default: now).")
    step: str | None = Field(default=None, description="Rolling windows: one window long, ending every step.")
    data: str | None = Field(default=None, description="A Parquet/CSV file on the server to check instead of the "
                                                       "prediction log (relative: to its workspace).")
    options: DriftOptions | None = None
    metrics_url: str | None = Field(default=None, description="A running model server, for the error rate.")
    min_labels: int = Field(default=30, ge=1)


RUNS = TypeAdapter(list[MonitorRun])
"""Serialises what a monitoring run stored."""


def _on_server(request: Request, path: str) -> str:
    return str(Path(request.app.state.workspace.settings.workspace) / path)


@router.post("/monitoring/models/{model:path}/runs", status_code=201, response_model=list[MonitorRun],
             openapi_extra=permission_of(MonitoringService.run), summary="Monitor a model")
def run(request: Request, model: str, body: MonitorRequest) -> Response:
    """Run every check on each window of the model's predictions (or on ``data``), store the
    results and evaluate the alert rules; answers the stored runs, one per window."""
    values = body.model_dump(exclude={"options"})
    if body.data is not None:
        values["data"] = _on_server(request, body.data)
    runs = monitoring(request).run(model, options=body.options, **values)
    return Response(RUNS.dump_json(runs), status_code=201, media_type=JSON)


@router.get("/monitoring/models/{model:path}/history", openapi_extra=permission_of(MonitoringService.history),
            summary="A model's monitored series")
def history(request: Request, model: str, metric: str | None = None, column: str | None = None,
            since: str | None = None, until: str | None = None) -> Response:
    """Stored points (``window_start, window_end, model, version, check, column, statistic,
    value, threshold, status, rows``) in window order, of one series (``CHECK.STATISTIC``)
    and column when given: Arrow IPC with ``Accept: application/vnd.apache.arrow.stream``, else JSON."""
    return frame_response(request, monitoring(request).history(model, metric, column, since, until))


EVENTS = TypeAdapter(list[AlertEvent])
"""Serialises what an alert evaluation did."""


@router.post("/monitoring/models/{model:path}/alert-evaluations", response_model=list[AlertEvent],
             openapi_extra=permission_of(MonitoringService.evaluate_alerts), summary="Evaluate a model's alert rules")
def evaluate_alerts(request: Request, model: str) -> Response:
    """Judge every rule watching the model (by name) on its newest points: what fired, resolved or
    was suppressed, with the deliveries enqueued."""
    return Response(EVENTS.dump_json(monitoring(request).evaluate_alerts(model)), media_type=JSON)


# references --------------------------------------------------------------------------------

class ReferenceSummary(BaseModel):
    """What a version's reference profile holds."""

    model: str
    version: int
    rows: int
    columns: list[str]
    outputs: list[str] = Field(description="The model's outputs profiled on the reference (prediction, score).")
    task: str | None
    classes: list[Any] | None


def _reference_response(request: Request, model: str, version: int, profile: ReferenceProfile) -> Response:
    if PROFILE in request.headers.get("accept", ""):
        return Response(profile.to_bytes(), media_type=PROFILE)
    summary = ReferenceSummary(model=model, version=version, rows=profile.inputs.rows, columns=list(profile.inputs.columns),
                               outputs=list(profile.outputs.columns) if profile.outputs is not None else [],
                               task=profile.task, classes=profile.classes)
    return Response(summary.model_dump_json(), media_type=JSON)


@router.get("/monitoring/models/{model:path}/reference", response_model=ReferenceSummary,
            openapi_extra=permission_of(MonitoringService.reference), summary="A version's reference profile")
def get_reference(request: Request, model: str) -> Response:
    """What the version's reference holds (its bytes with ``Accept: application/octet-stream``)."""
    require(request, MonitoringService.reference)
    service = monitoring(request)
    version = service.version(model)
    return _reference_response(request, version.model, version.version, service.reference(version))


REFERENCE_BODY = {"requestBody": {"required": True, "description": "Training features as Arrow IPC (the model's "
                                  "answers on them are profiled too), or JSON {\"path\": a Parquet/CSV file on the server}.",
                                  "content": {ARROW: {"schema": {"type": "string", "format": "binary"}},
                                              "application/json": {"schema": {
                                                  "type": "object", "properties": {"path": {"type": "string"}},
                                                  "required": ["path"]}}}}}


class ReferencePath(BaseModel):
    """A reference's training data as a file on the server."""

    model_config = ConfigDict(extra="forbid")

    path: str


@router.put("/monitoring/models/{model:path}/reference", response_model=ReferenceSummary,
            openapi_extra={**(permission_of(MonitoringService.set_reference) or {}), **REFERENCE_BODY},
            summary="Set a version's reference profile")
async def set_reference(request: Request, model: str) -> Response:
    """Profile training data as the version's reference, for models logged without ``training_data``."""
    require(request, MonitoringService.set_reference)
    content = await request.body()
    if request.headers.get("content-type", "").startswith(ARROW):
        data: Any = read_arrow(content)
    else:
        try:
            data = _on_server(request, ReferencePath.model_validate_json(content).path)
        except ValueError as exc:
            raise ValidationError("the body is neither Arrow IPC nor JSON {\"path\": ...}", field="path") from exc
    service = monitoring(request)
    version = await run_in_threadpool(service.version, model)
    profile = await run_in_threadpool(service.set_reference, f"{version.model}/{version.version}", data)
    return _reference_response(request, version.model, version.version, profile)


# alert rules -------------------------------------------------------------------------------

@router.put("/monitoring/alert-rules/{name}", response_model=AlertRule,
            openapi_extra=permission_of(AlertService.put_rule), summary="Create or replace an alert rule")
def put_rule(request: Request, name: str, document: dict[str, Any] = Body()) -> Response:
    """Create or replace the rule ``name`` (the body is the rule, as in an alerts YAML file; its
    ``name`` may be left out); a firing alert stays firing. The answer masks webhook secrets."""
    require(request, AlertService.put_rule)
    if document.setdefault("name", name) != name:
        raise ValidationError(f"rule {document['name']!r}: the body names another rule than the path's {name!r}",
                              field="name")
    rule = alerts(request).put_rule(parse_rule(document, f"rule {name}"))
    return Response(rule.model_dump_json(), media_type=JSON)

