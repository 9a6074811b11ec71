"""The UI's routes: every Conveyor error a page meets becomes a readable page (or, for an
htmx swap, a readable fragment) with the error's HTTP status, never a JSON body or a 500."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from conveyor.core.workspace import Workspace
from conveyor.errors import ConveyorError
from conveyor.ui.rendering import is_htmx, render

log = logging.getLogger("conveyor.ui")

TITLES = {401: "Sign in required", 403: "Not allowed", 404: "Not found", 409: "Conflict", 422: "Invalid request",
          503: "Unavailable"}


def error_page(request: Request, error: ConveyorError) -> Response:
    """The page (or fragment) that explains ``error``, with its HTTP status."""
    if error.http_status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, error.message)
    title = TITLES.get(error.http_status, "Something went wrong")
    # An htmx swap gets the message alone, shown where the fragment would have gone
    # (base.html tells htmx to swap 4xx and 5xx answers too).
    template = "_error.html" if is_htmx(request) else "error.html"
    return render(request, template, status_code=error.http_status, error=error, title=title)


class PageRoute(APIRoute):
    """A route whose ``ConveyorError`` is rendered by ``error_page``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ConveyorError as error:
                return error_page(request, error)

        return handle


def page_router() -> APIRouter:
    """A router of HTML pages (kept out of the OpenAPI document)."""
    return APIRouter(route_class=PageRoute, include_in_schema=False)


def workspace_of(request: Request) -> Workspace:
    """The workspace the server was built on."""
    return request.app.state.workspace
