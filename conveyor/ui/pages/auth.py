"""Signing in with an API token (kept in an HttpOnly cookie) and signing out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from conveyor.errors import Unauthenticated
from conveyor.ui.rendering import render
from conveyor.ui.routing import page_router, workspace_of

TOKEN_COOKIE = "conveyor_token"
COOKIE_DAYS = 30


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this server, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def build_router() -> APIRouter:
    router = page_router()

    @router.get("/login")
    def login_form(request: Request, next: str = "/") -> Response:
        return render(request, "login.html", next=safe_next(next), error=None)

    @router.post("/login")
    def login(request: Request, token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/") -> Response:
        token = token.strip()
        try:
            if not token:
                raise Unauthenticated("paste an API token to sign in", field="token")
            workspace_of(request).identity.authenticate(token)
        except Unauthenticated as error:
            return render(request, "login.html", status_code=401, next=safe_next(next), error=error.message)
        response = RedirectResponse(safe_next(next), status_code=303)
        response.set_cookie(TOKEN_COOKIE, token, max_age=COOKIE_DAYS * 86_400, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/")
        return response

    @router.api_route("/logout", methods=["GET", "POST"])
    def logout(request: Request) -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(TOKEN_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    return router
