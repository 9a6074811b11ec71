"""The platform server: one FastAPI app over a workspace's stores, every capability
under ``/api/v1``, the web UI at ``/``, OpenAPI at ``/openapi.json``."""

from __future__ import annotations

import importlib
import os

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from conveyor.core.workspace import Workspace, open_workspace
from conveyor.server.auth import DefaultActor, TokenAuth
from conveyor.server.errors import install_error_handlers

API_PREFIX = "/api/v1"
ROUTERS = (
    "conveyor.tracking.api",
    "conveyor.registry.api",
    "conveyor.features.api",
    "conveyor.pipelines.api",
    "conveyor.serving.deployments.api",
    "conveyor.monitoring.api",
    "conveyor.automation.api",
    "conveyor.governance.api",
)
"""Modules whose ``router`` the server includes, one per capability."""


def create_app(workspace: Workspace, auth: bool = True, ui: bool = True) -> FastAPI:
    """The server of ``workspace``.

    Args:
        auth: require an API token on every route but ``/healthz`` (and the login page);
            off, every request acts as the workspace's default actor.
        ui: serve the web UI at ``/``.
    """
    from conveyor import __version__

    app = FastAPI(title="Conveyor", version=__version__, docs_url="/docs", redoc_url=None)
    app.state.workspace = workspace
    install_error_handlers(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    for name in ROUTERS:
        app.include_router(importlib.import_module(name).router, prefix=API_PREFIX)
    if ui:
        _include_ui(app)
    if auth:
        app.add_middleware(TokenAuth, authenticate=lambda token, project: workspace.identity.authenticate(token, project))
    else:
        app.add_middleware(DefaultActor, actor=lambda: workspace.default_actor)
    return app


def _include_ui(app: FastAPI) -> None:
    from conveyor.ui import build_ui_router, mount_static

    mount_static(app)
    app.include_router(build_ui_router())


AUTH_ENV = "CONVEYOR_SERVER_AUTH"


def app_from_environment() -> FastAPI:
    """The app a uvicorn worker builds from what ``conveyor server start`` put in its
    environment (``CONVEYOR_WORKSPACE``, ``CONVEYOR_METADATA__URL``, ...)."""
    return create_app(open_workspace(), auth=os.environ.get(AUTH_ENV, "1") == "1")
