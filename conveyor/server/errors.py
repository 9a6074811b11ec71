"""One JSON shape for every error the server answers: ``{"error": {"code", "message", "field"}}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from conveyor.errors import ConveyorError

log = logging.getLogger("conveyor.server")

_HTTP_CODES = {400: "invalid", 401: "unauthenticated", 403: "permission_denied", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 413: "too_large"}


def error_response(status: int, code: str, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """The server's error body with ``status``."""
    return JSONResponse({"error": {"code": code, "message": message, "field": field}}, status_code=status, headers=headers)


def _field(location: tuple[object, ...]) -> str:
    parts = [str(part) for part in location if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def _conveyor_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ConveyorError)
    if exc.http_status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
    return error_response(exc.http_status, exc.code, exc.message, exc.field)


async def _request_invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    field = _field(tuple(first.get("loc", ())))
    return error_response(422, "invalid", f"{field}: {first.get('msg', 'invalid value')}", field)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, _HTTP_CODES.get(exc.status_code, "error"), str(exc.detail), None, exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path)
    return error_response(500, "internal", f"internal error: {type(exc).__name__}")


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to the one JSON shape (tracebacks go to the log only)."""
    app.add_exception_handler(ConveyorError, _conveyor_error)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
