"""Routes declared as data: one ``Endpoint`` names a service method, its HTTP verb and path.

The same declaration builds the FastAPI route (arguments from the method's signature:
path parameters from the path, the rest as query parameters for GET and DELETE or a
JSON body otherwise) and the remote client's call, so the SDK talks to the server
through the very interface it uses in-process. The permission a route needs is the
one its service method is guarded with, shown in OpenAPI as ``x-conveyor-permission``.
"""

from __future__ import annotations

import collections.abc
import functools
import inspect
import re
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pydantic
import pydantic_core
from fastapi import APIRouter, Body, Path, Query, Request, Response

from conveyor.governance.permissions import action_of

JSON = "application/json"
_PATH_PARAM = re.compile(r"{(\w+)(?::path)?}")
BODY_VERBS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True)
class Endpoint:
    """A service method served at ``verb path`` (path relative to its capability's prefix)."""

    method: str
    verb: str
    path: str
    status: int = 200

    @property
    def path_params(self) -> list[str]:
        """The names the path fills in."""
        return _PATH_PARAM.findall(self.path)


@dataclass(frozen=True)
class Parameter:
    """One argument of a served method, with its type and default."""

    name: str
    hint: Any
    default: Any

    @functools.cached_property
    def adapter(self) -> pydantic.TypeAdapter:
        """Validates and serialises values of this argument."""
        return pydantic.TypeAdapter(self.hint)


@dataclass(frozen=True)
class Signature:
    """What a served method takes and returns, read once from its annotations."""

    parameters: tuple[Parameter, ...]
    returns: Any

    @functools.cached_property
    def result(self) -> pydantic.TypeAdapter:
        """Validates and serialises the method's result."""
        return pydantic.TypeAdapter(self.returns)


def _wire_type(hint: Any) -> Any:
    """The type an argument has on the wire: an iterable arrives as a list."""
    if typing.get_origin(hint) is collections.abc.Iterable:
        return list[typing.get_args(hint)]  # type: ignore[misc]
    return hint


@functools.cache
def signature_of(service_type: type, method: str) -> Signature:
    """The parameters (without ``self``) and return type of ``service_type.method``."""
    function = getattr(service_type, method)
    # a mixin's ``self: Service`` names the service only for type checkers; resolve it here
    hints = typing.get_type_hints(function, localns={service_type.__name__: service_type})
    parameters = tuple(
        Parameter(name, _wire_type(hints.get(name, Any)), param.default)
        for name, param in inspect.signature(function).parameters.items()
        if name != "self" and param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
    )
    returns = hints.get("return", Any)
    return Signature(parameters, type(None) if returns is None else returns)


def to_json(adapter: pydantic.TypeAdapter, value: Any) -> bytes:
    """``value`` as JSON, non-finite floats as the strings ``"NaN"``, ``"Infinity"``,
    ``"-Infinity"`` (which pydantic reads back as floats) rather than ``null``."""
    return pydantic_core.to_json(adapter.dump_python(value, mode="python"), inf_nan_mode="strings")


def _required(default: Any) -> Any:
    return ... if default is inspect.Parameter.empty else default


def body_model(service_type: type, endpoint: Endpoint) -> type[pydantic.BaseModel] | None:
    """The JSON body of a POST/PUT/PATCH route: the method's arguments not in the path."""
    if endpoint.verb not in BODY_VERBS:
        return None
    fields = {
        param.name: (param.hint, _required(param.default))
        for param in signature_of(service_type, endpoint.method).parameters
        if param.name not in endpoint.path_params
    }
    if not fields:
        return None
    name = "".join(part.title() for part in endpoint.method.split("_")) + "Body"
    return pydantic.create_model(name, __config__=pydantic.ConfigDict(arbitrary_types_allowed=True), **fields)


def _route_parameters(service_type: type, endpoint: Endpoint, body: type[pydantic.BaseModel] | None) -> list[inspect.Parameter]:
    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter("request", keyword, annotation=Request)]
    for param in signature_of(service_type, endpoint.method).parameters:
        if param.name in endpoint.path_params:
            params.append(inspect.Parameter(param.name, keyword, annotation=param.hint, default=Path()))
        elif endpoint.verb not in BODY_VERBS:
            params.append(inspect.Parameter(param.name, keyword, annotation=param.hint, default=Query(_required(param.default))))
    if body is not None:
        params.append(inspect.Parameter("body", keyword, annotation=body, default=Body()))
    return params


def _openapi_extra(function: Callable[..., Any]) -> dict[str, Any] | None:
    action = action_of(function)
    return {"x-conveyor-permission": action.value} if action else None


def _response_model(returns: Any) -> Any:
    try:
        pydantic.TypeAdapter(returns).json_schema()
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticInvalidForJsonSchema, TypeError):
        return None
    return returns


def add_service_routes(
    router: APIRouter, service_type: type, service: Callable[[Request], Any], endpoints: Sequence[Endpoint],
) -> APIRouter:
    """Add one route per endpoint to ``router``, each calling ``service(request).method(...)``."""
    for endpoint in endpoints:
        _add_route(router, service_type, service, endpoint)
    return router


def _add_route(router: APIRouter, service_type: type, service: Callable[[Request], Any], endpoint: Endpoint) -> None:
    function = getattr(service_type, endpoint.method)
    signature = signature_of(service_type, endpoint.method)
    body = body_model(service_type, endpoint)

    def call(request: Request, **kwargs: Any) -> Response:
        payload = kwargs.pop("body", None)
        if payload is not None:
            kwargs.update({name: getattr(payload, name) for name in type(payload).model_fields})
        result = getattr(service(request), endpoint.method)(**kwargs)
        return Response(to_json(signature.result, result), status_code=endpoint.status, media_type=JSON)

    call.__signature__ = inspect.Signature(_route_parameters(service_type, endpoint, body))  # type: ignore[attr-defined]
    call.__name__ = endpoint.method
    router.add_api_route(
        endpoint.path, call, methods=[endpoint.verb], status_code=endpoint.status,
        response_model=_response_model(signature.returns), summary=(inspect.getdoc(function) or "").split("\n")[0],
        description=inspect.getdoc(function), openapi_extra=_openapi_extra(function), name=endpoint.method,
    )


def permission_of(function: Callable[..., Any]) -> dict[str, Any] | None:
    """The OpenAPI extension naming the permission a hand-written route's service method needs."""
    return _openapi_extra(function)
