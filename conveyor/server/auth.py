"""Authentication: each request's API token becomes the actor its services act as.

A pure ASGI middleware, so the actor set here (a context variable) is the one the
route's service call sees, also in the thread pool that runs it. The token comes
from ``Authorization: Bearer ...`` or, for the browser, the ``conveyor_token`` cookie;
the project from the ``X-Conveyor-Project`` header (default: ``default``).
"""

from __future__ import annotations

from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from conveyor.errors import Unauthenticated
from conveyor.governance import Actor, acting_as
from conveyor.server.errors import error_response

TOKEN_COOKIE = "conveyor_token"
PROJECT_HEADER = "x-conveyor-project"
PUBLIC_PATHS = ("/healthz", "/login", "/static/")


def request_token(headers: Headers) -> str | None:
    """The API token a request carries, if any."""
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    cookie = SimpleCookie(headers.get("cookie", ""))
    return cookie[TOKEN_COOKIE].value if TOKEN_COOKIE in cookie else None


def _is_public(path: str) -> bool:
    return any(path == prefix or (prefix.endswith("/") and path.startswith(prefix)) for prefix in PUBLIC_PATHS)


def _wants_page(scope: Scope, headers: Headers) -> bool:
    return not scope["path"].startswith("/api/") and "text/html" in headers.get("accept", "")


class TokenAuth:
    """Run each request as the user its token names; 401 (or, for a page, a redirect to /login) otherwise."""

    def __init__(self, app: ASGIApp, authenticate: Callable[[str, str | None], Actor]) -> None:
        self.app = app
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            token = request_token(headers)
            if token is None:
                raise Unauthenticated("an API token is required: send 'Authorization: Bearer <token>'", field="token")
            actor = await run_in_threadpool(self.authenticate, token, headers.get(PROJECT_HEADER))
        except Unauthenticated as exc:
            await self._refuse(scope, headers, exc)(scope, receive, send)
            return
        scope.setdefault("state", {})["actor"] = actor
        with acting_as(actor):
            await self.app(scope, receive, send)

    @staticmethod
    def _refuse(scope: Scope, headers: Headers, exc: Unauthenticated) -> Any:
        if _wants_page(scope, headers):
            target = scope["path"] + (f"?{scope['query_string'].decode()}" if scope.get("query_string") else "")
            return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
        return error_response(401, exc.code, exc.message, exc.field, {"WWW-Authenticate": "Bearer"})


class DefaultActor:
    """With authentication off: every request acts as the workspace's default actor."""

    def __init__(self, app: ASGIApp, actor: Callable[[], Actor]) -> None:
        self.app = app
        self.actor = actor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})["actor"] = self.actor()
        await self.app(scope, receive, send)
