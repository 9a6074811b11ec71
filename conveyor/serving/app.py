"""The ASGI application: Starlette routes over the served models, Prometheus metrics.

Routes: ``POST /v1/models/{name}/predict``, ``GET /v1/models/{name}``, ``GET /v1/models``,
``GET /healthz`` (the process answers), ``GET /readyz`` (every model is loaded),
``GET /metrics`` and ``GET /openapi.json``. Bad input is a 422 whose JSON lists each
offending field; an unknown model a 404; nothing a client sends makes a 500.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from conveyor.core.workspace import Workspace, open_workspace
from conveyor.errors import ConveyorError
from conveyor.serving.endpoint import ModelEndpoint, ModelReference
from conveyor.serving.payload import BadRequest, parse_frame

MODELS_VARIABLE = "CONVEYOR_SERVE_MODELS"
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
schemas = SchemaGenerator({"openapi": "3.0.0", "info": {"title": "Conveyor model server", "version": "1"}})


def _json(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY), status, media_type="application/json")


def _not_served(name: str) -> Response:
    return _json({"code": "not_found", "message": f"model {name!r} is not served here", "field": "name"}, 404)


class ModelServer:
    """The served models and the server's metrics."""

    def __init__(self, workspace: Workspace, references: Sequence[str]) -> None:
        self.metrics = CollectorRegistry()
        self.requests = Counter("conveyor_requests", "Prediction requests by model, version and HTTP status.",
                                ["model", "version", "status"], registry=self.metrics)
        self.latency = Histogram("conveyor_request_seconds", "Time to answer a prediction request.",
                                 ["model", "version"], buckets=LATENCY_BUCKETS, registry=self.metrics)
        self.rows = Counter("conveyor_predicted_rows", "Rows predicted.", ["model", "version"], registry=self.metrics)
        parsed = [ModelReference.parse(text) for text in references]
        self.endpoints = {ref.name: ModelEndpoint(workspace.registry, ref) for ref in parsed}

    async def predict(self, request: Request) -> Response:
        """
        summary: Predict rows with a served model
        requestBody:
          content:
            application/json:
              schema:
                oneOf:
                  - {type: object, properties: {instances: {type: array, items: {type: object}}}}
                  - {type: object, properties: {columns: {type: array}, data: {type: array}}}
        responses:
          200: {description: "predictions, probabilities (classifiers), model version, request id"}
          404: {description: no such model}
          422: {description: "errors: one entry per offending field"}
        """
        started = time.perf_counter()
        name = request.path_params["name"]
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            return _not_served(name)
        version = str(endpoint.version)
        try:
            frame = parse_frame(await request.body())
            answer = endpoint.predict(frame)
        except BadRequest as bad:
            self.requests.labels(name, version, "422").inc()
            return _json(bad.body(), 422)
        answer.update(model=name, version=endpoint.version, request_id=uuid.uuid4().hex)
        response = _json(answer)
        self.requests.labels(name, version, "200").inc()
        self.rows.labels(name, version).inc(len(frame))
        self.latency.labels(name, version).observe(time.perf_counter() - started)
        return response

    async def describe(self, request: Request) -> Response:
        """
        summary: The served version of a model and its signature
        responses:
          200: {description: "name, version, flavor, signature"}
          404: {description: no such model}
        """
        endpoint = self.endpoints.get(request.path_params["name"])
        if endpoint is None:
            return _not_served(request.path_params["name"])
        return _json(endpoint.describe())

    async def list_models(self, request: Request) -> Response:
        """
        summary: Every served model
        responses:
          200: {description: "name, version of each"}
        """
        return _json([{"name": e.reference.name, "version": e.version} for e in self.endpoints.values()])

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
        return _json({"status": "ready", "models": {n: e.version for n, e in self.endpoints.items()}})

    async def prometheus(self, request: Request) -> Response:
        """
        summary: Prometheus metrics
        responses:
          200: {description: text exposition format}
        """
        return Response(generate_latest(self.metrics), media_type=CONTENT_TYPE_LATEST)

    async def openapi(self, request: Request) -> Response:
        """The OpenAPI schema of these routes."""
        schema = schemas.get_schema(routes=request.app.routes)
        return Response(orjson.dumps(schema, option=orjson.OPT_NON_STR_KEYS), media_type="application/json")

    def routes(self) -> list[Route]:
        """The HTTP routes."""
        return [
            Route("/v1/models/{name}/predict", self.predict, methods=["POST"]),
            Route("/v1/models/{name}", self.describe, methods=["GET"]),
            Route("/v1/models", self.list_models, methods=["GET"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.prometheus, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"], include_in_schema=False),
        ]


def _internal_error(request: Request, error: Exception) -> Response:
    """A server-side fault (a model that raises, a store that fails) as JSON, never HTML."""
    if isinstance(error, ConveyorError):
        return _json(error.to_dict(), error.http_status)
    return _json({"code": "internal", "message": f"{type(error).__name__}: {error}", "field": None}, 500)


def create_app(workspace: Workspace, references: Sequence[str]) -> Starlette:
    """The application serving ``references`` (``NAME@ALIAS``, ``NAME/VERSION``) of ``workspace``."""
    server = ModelServer(workspace, references)
    app = Starlette(routes=server.routes(), exception_handlers={Exception: _internal_error})
    app.state.server = server
    return app


def app_from_environment() -> Starlette:
    """The application uvicorn workers build: models from ``CONVEYOR_SERVE_MODELS`` (comma
    separated), workspace from the ``CONVEYOR_*`` settings."""
    return create_app(open_workspace(), [m for m in os.environ.get(MODELS_VARIABLE, "").split(",") if m])
