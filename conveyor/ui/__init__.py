"""The web UI of the platform server: Jinja2 pages, htmx for partial updates, plotly charts.

Every asset ships inside the package (htmx, plotly.js from the ``plotly`` package, the
stylesheet); nothing is fetched from a CDN and nothing is built with Node. The server
(``conveyor.server.app.create_app``) authenticates each request before a page runs, and
pages call the workspace's services as the request's user.
"""

from __future__ import annotations

from fastapi import APIRouter

from conveyor.ui.assets import mount_static


def build_ui_router() -> APIRouter:
    """Every page of the UI (``/``, ``/experiments``, ``/models``, ... and ``/login``)."""
    from conveyor.ui.pages import AREAS

    router = APIRouter(include_in_schema=False)
    for area in AREAS:
        router.include_router(area.build_router())
    return router


__all__ = ["build_ui_router", "mount_static"]
