"""The ASGI application: Starlette routes over the served models, Prometheus metrics.

Routes: ``POST /v1/models/{name}/predict`` and ``POST /v1/deployments/{name}/predict``,
``POST /v1/feedback``, ``GET /v1/models/{name}``, ``GET /v1/models``,
``GET /v1/deployments``, ``GET /healthz`` (the process answers), ``GET /readyz`` (every
model is loaded), ``GET /metrics`` and ``GET /openapi.json``. Bad input is a 422 whose
JSON lists each offending field; an unknown model a 404; nothing a client sends makes
a 500. Every answer (shadow answers too) goes to the prediction log off the hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from conveyor.core.clock import SYSTEM_CLOCK, Clock
from conveyor.core.workspace import Workspace, open_workspace
from conveyor.errors import ConveyorError
from conveyor.features.store import FeatureStore
from conveyor.serving.endpoint import Answer, ModelEndpoint, ModelReference
from conveyor.serving.feedback import FeedbackService, parse_feedback_body
from conveyor.serving.following import (
    DeploymentSource,
    EndpointCache,
    FixedSource,
    Follower,
    ReferenceSource,
    Source,
)
from conveyor.serving.metrics import ServerMetrics
from conveyor.serving.payload import BadRequest, Payload, parse_payload
from conveyor.serving.prediction_log import (
    PredictionIndex,
    PredictionLog,
    PredictionRecord,
    new_request_id,
)
from conveyor.serving.traffic import Assignment, ServedModel, Variant

MODELS_VARIABLE = "CONVEYOR_SERVE_MODELS"
DEPLOYMENTS_VARIABLE = "CONVEYOR_SERVE_DEPLOYMENTS"
# The prediction log's writer thread converts batches in Python; a short switch interval
# hands the GIL back to the event loop sooner, which keeps the latency tail short.
GIL_SWITCH_S = 0.0005
schemas = SchemaGenerator({"openapi": "3.0.0", "info": {"title": "Conveyor model server", "version": "1"}})


def _json(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY), status, media_type="application/json")


def _not_served(kind: str, name: str) -> Response:
    return _json({"code": "not_found", "message": f"{kind} {name!r} is not served here", "field": "name"}, 404)


def _merged(parts: list[tuple[Assignment, Answer]], rows: int) -> dict[str, Any]:
    """One body for an A/B request whose rows went to different versions, row by row."""
    predictions: list[Any] = [None] * rows
    probabilities: list[Any] = [None] * rows
    versions: list[int] = [0] * rows
    variants: list[str] = [""] * rows
    for assignment, answer in parts:
        for position, row in enumerate(assignment.rows or range(rows)):
            predictions[row] = answer.predictions[position]
            probabilities[row] = None if answer.probabilities is None else answer.probabilities[position]
            versions[row], variants[row] = assignment.variant.endpoint.version, assignment.variant.label
    body: dict[str, Any] = {"predictions": predictions, "version": versions, "variant": variants}
    if parts[0][1].probabilities is not None:
        body.update(probabilities=probabilities, classes=parts[0][0].variant.endpoint.classes)
    return body


def _features(parts: list[tuple[Assignment, Answer]]) -> dict[str, Any] | None:
    """One feature report for the request, rows numbered as the client sent them."""
    merged: dict[str, Any] | None = None
    for assignment, answer in parts:
        report = answer.features
        if report is None:
            continue
        merged = merged or {"service_columns": [], "missing": {}, "stale": {}}
        merged["service_columns"] = list(dict.fromkeys(merged["service_columns"] + report.fetched))
        positions = assignment.rows
        for kind, found in (("missing", report.missing), ("stale", report.stale)):
            for name, rows in found.items():
                sent = rows if positions is None else [positions[row] for row in rows]
                merged[kind][name] = sorted(merged[kind].get(name, []) + sent)
    return merged


def _body(answer: Answer, variant: Variant) -> dict[str, Any]:
    endpoint = variant.endpoint
    if answer.probabilities is None:
        return {"predictions": answer.predictions, "version": endpoint.version, "variant": variant.label}
    return {"predictions": answer.predictions.tolist(), "probabilities": answer.probabilities,
            "classes": endpoint.classes, "version": endpoint.version, "variant": variant.label}


class ModelServer:
    """The served models and deployments, the prediction log and the server's metrics.

    ``clock`` stamps the prediction log's records, so a server run on simulated time logs
    simulated times that monitoring windows find; latencies are always real time."""

    def __init__(self, sources: list[Source], cache: EndpointCache, poll_interval_s: float,
                 log: PredictionLog | None = None, feedback: FeedbackService | None = None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.models: dict[str, ServedModel] = {}
        self.deployments: dict[str, ServedModel] = {}
        self.log = log
        self.clock = clock
        self.feedback = feedback
        self.metrics = ServerMetrics(log)
        self.follower = Follower(sources, cache, self._install, poll_interval_s, self.metrics.reload_failures.inc)
        self.follower.load_all()

    def _install(self, source: Source, served: ServedModel) -> None:
        """Swap in a freshly loaded model: one assignment per name, atomic for readers."""
        if isinstance(source, DeploymentSource):
            self.deployments[source.name] = served
            if served.name not in self.models or self.models[served.name].deployment is not None:
                self.models[served.name] = served
        else:
            self.models[source.name] = served

    def served(self) -> list[ServedModel]:
        """Everything served now."""
        return [*self.models.values(), *self.deployments.values()]

    def _record(self, served: ServedModel, variant: Variant, answer: Answer, request_id: str, started: float,
                shadow: bool = False) -> None:
        if self.log is None:
            return
        endpoint = variant.endpoint
        self.log.record(PredictionRecord(
            request_id=request_id, time=self.clock.now(), deployment=served.deployment, model=endpoint.name,
            version=endpoint.version, variant=variant.label, shadow=shadow,
            latency_ms=(time.perf_counter() - started) * 1000, inputs=answer.inputs.as_records,
            fetched=answer.features.fetched if answer.features is not None else [],
            predictions=answer.predictions, probabilities=answer.probabilities, classes=endpoint.classes,
        ))

    def _shadow(self, served: ServedModel, payload: Payload, request_id: str) -> None:
        """Shadow variants answer after the response is sent; their answers are only logged."""
        for variant in served.shadows:
            started = time.perf_counter()
            try:
                answer = variant.endpoint.answer(payload)
            except BadRequest:
                self.metrics.count(variant, "shadow-422")
                continue
            self.metrics.count(variant, "shadow")
            self._record(served, variant, answer, request_id, started, shadow=True)

    async def _predict(self, served: ServedModel | None, kind: str, name: str, request: Request) -> Response:
        started = time.perf_counter()
        if served is None:
            return _not_served(kind, name)
        try:
            payload = parse_payload(await request.body())
            assignments = served.assign(payload)
            parts = [(a, a.variant.endpoint.answer(payload if a.rows is None else payload.take(a.rows)))
                     for a in assignments]
        except BadRequest as bad:
            self.metrics.count(served.primary, "422")
            return _json(bad.body(), 422)
        request_id = new_request_id()
        body = _body(parts[0][1], parts[0][0].variant) if len(parts) == 1 else _merged(parts, len(payload))
        body.update(model=served.name, request_id=request_id)
        features = _features(parts)
        if features is not None:
            body["features"] = features
        if served.deployment is not None:
            body.update(deployment=served.deployment, revision=served.revision)
        response = _json(body)
        for assignment, answer in parts:
            self._record(served, assignment.variant, answer, request_id, started)
            self.metrics.observe(assignment.variant, len(answer.predictions), time.perf_counter() - started)
        if served.shadows:
            response.background = BackgroundTask(self._shadow, served, payload, request_id)
        return response

    async def predict(self, request: Request) -> Response:
        """
        summary: Predict rows with a served model (through its deployment's policy, if it has one)
        requestBody:
          content:
            application/json:
              schema:
                oneOf:
                  - {type: object, properties: {instances: {type: array, items: {type: object}}}}
                  - {type: object, properties: {columns: {type: array}, data: {type: array}}}
        responses:
          200: {description: "predictions, probabilities and classes (classifiers), version, variant, request id"}
          404: {description: no such model}
          422: {description: "errors: one entry per offending field"}
        """
        name = request.path_params["name"]
        return await self._predict(self.models.get(name), "model", name, request)

    async def predict_deployment(self, request: Request) -> Response:
        """
        summary: Predict rows through a deployment's traffic policy
        responses:
          200: {description: "predictions, version and variant that answered, deployment revision, request id"}
          404: {description: no such deployment}
          422: {description: "errors: one entry per offending field"}
        """
        name = request.path_params["name"]
        return await self._predict(self.deployments.get(name), "deployment", name, request)

    async def record_feedback(self, request: Request) -> Response:
        """
        summary: Record ground truth for earlier predictions, by request id
        requestBody:
          content:
            application/json:
              schema:
                oneOf:
                  - {type: object, properties: {request_id: {type: string}, row: {type: integer}, label: {}}}
                  - {type: object, properties: {feedback: {type: array, items: {type: object}}}}
        responses:
          200: {description: "recorded: how many labels"}
          422: {description: "errors: one entry per offending field"}
        """
        if self.feedback is None:
            return _json({"code": "not_found", "message": "this server records no feedback", "field": None}, 404)
        try:
            items = parse_feedback_body(await request.body())
        except BadRequest as bad:
            return _json(bad.body(), 422)
        return _json({"recorded": await asyncio.to_thread(self.feedback.record, items)})

    async def describe(self, request: Request) -> Response:
        """
        summary: The served version(s) of a model and the signature
        responses:
          200: {description: "name, version, flavor, signature, variants"}
          404: {description: no such model}
        """
        served = self.models.get(request.path_params["name"])
        if served is None:
            return _not_served("model", request.path_params["name"])
        return _json({**served.primary.endpoint.describe(), "policy": served.policy, "deployment": served.deployment,
                      "variants": [{"label": v.label, "version": v.endpoint.version, "weight": v.weight}
                                   for v in served.variants],
                      "shadows": [{"label": v.label, "version": v.endpoint.version} for v in served.shadows]})

    async def list_models(self, request: Request) -> Response:
        """
        summary: Every served model
        responses:
          200: {description: "name, version and deployment of each"}
        """
        return _json([{"name": name, "version": s.primary.endpoint.version, "deployment": s.deployment}
                      for name, s in self.models.items()])

    async def list_deployments(self, request: Request) -> Response:
        """
        summary: Every served deployment, at the revision it serves
        responses:
          200: {description: "name, model, revision, policy, variants"}
        """
        return _json([{"name": name, "model": s.name, "revision": s.revision, "policy": s.policy,
                       "variants": {v.label: v.endpoint.version for v in s.variants},
                       "shadows": {v.label: v.endpoint.version for v in s.shadows}}
                      for name, s in self.deployments.items()])

    async def healthz(self, request: Request) -> Response:
        """
        summary: The process answers
        responses:
          200: {description: ok}
        """
        return _json({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """
        summary: Every model is loaded and ready
        responses:
          200: {description: ready}
        """
        return _json({"status": "ready", "models": {n: s.primary.endpoint.version for n, s in self.models.items()}})

    async def prometheus(self, request: Request) -> Response:
        """
        summary: Prometheus metrics
        responses:
          200: {description: text exposition format}
        """
        body, content_type = self.metrics.exposition()
        return Response(body, media_type=content_type)

    async def openapi(self, request: Request) -> Response:
        """The OpenAPI schema of these routes."""
        schema = schemas.get_schema(routes=request.app.routes)
        return Response(orjson.dumps(schema, option=orjson.OPT_NON_STR_KEYS), media_type="application/json")

    def routes(self) -> list[Route]:
        """The HTTP routes."""
        return [
            Route("/v1/models/{name}/predict", self.predict, methods=["POST"]),
            Route("/v1/deployments/{name}/predict", self.predict_deployment, methods=["POST"]),
            Route("/v1/feedback", self.record_feedback, methods=["POST"]),
            Route("/v1/models/{name}", self.describe, methods=["GET"]),
            Route("/v1/models", self.list_models, methods=["GET"]),
            Route("/v1/deployments", self.list_deployments, methods=["GET"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.prometheus, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"], include_in_schema=False),
        ]

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Follow aliases and deployments while serving; flush the prediction log on the way out."""
        following = asyncio.create_task(self.follower.run(self.served))
        try:
            yield
        finally:
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following
            if self.log is not None:
                await asyncio.to_thread(self.log.close)


def _internal_error(request: Request, error: Exception) -> Response:
    """A server-side fault (a model that raises, a store that fails) as JSON, never HTML."""
    if isinstance(error, ConveyorError):
        return _json(error.to_dict(), error.http_status)
    return _json({"code": "internal", "message": f"{type(error).__name__}: {error}", "field": None}, 500)


def create_app(workspace: Workspace, references: Sequence[str] = (), deployments: Sequence[str] = (),
               clock: Clock = SYSTEM_CLOCK) -> Starlette:
    """The application serving ``references`` (``NAME@ALIAS``, ``NAME/VERSION``) and
    ``deployments`` (by name) of ``workspace``, following aliases and deployment changes.

    ``clock`` stamps the prediction log (the automation demo serves on simulated time)."""
    sys.setswitchinterval(GIL_SWITCH_S)
    sources: list[Source] = [ReferenceSource(workspace.registry, ModelReference.parse(text)) for text in references]
    sources += [DeploymentSource(workspace.deployments, name) for name in deployments]
    settings = workspace.settings.serving
    log = None
    if settings.log_predictions:
        log = PredictionLog(workspace.settings.prediction_log_url, PredictionIndex(workspace.metadata),
                            max_queue=settings.log_queue_rows, flush_interval_s=settings.log_flush_interval_s)
    features = functools.cache(lambda: FeatureStore(workspace=workspace))
    server = ModelServer(sources, EndpointCache(workspace.registry, features), settings.poll_interval_s, log,
                         FeedbackService(workspace.metadata), clock=clock)
    app = Starlette(routes=server.routes(), exception_handlers={Exception: _internal_error}, lifespan=server.lifespan)
    app.state.server = server
    return app


def create_bundle_app(model: ModelEndpoint, log_root: str | None = None) -> Starlette:
    """The application a serving bundle runs: one model loaded from its folder, no workspace;
    predictions go to ``log_root`` (a path or fsspec URL) unless it is None, without an index."""
    log = PredictionLog(log_root) if log_root else None
    server = ModelServer([FixedSource(model)], EndpointCache(None), poll_interval_s=3600.0, log=log)
    app = Starlette(routes=server.routes(), exception_handlers={Exception: _internal_error}, lifespan=server.lifespan)
    app.state.server = server
    return app


def _names(variable: str) -> list[str]:
    return [item for item in os.environ.get(variable, "").split(",") if item]


def app_from_environment() -> Starlette:
    """The application uvicorn workers build: models from ``CONVEYOR_SERVE_MODELS`` and
    deployments from ``CONVEYOR_SERVE_DEPLOYMENTS`` (comma separated), the workspace from
    the ``CONVEYOR_*`` settings."""
    return create_app(open_workspace(), _names(MODELS_VARIABLE), _names(DEPLOYMENTS_VARIABLE))

