"""The SDK's and CLI's side of the server: HTTP calls that raise the same errors as in-process.

``RemoteService`` answers every method its capability's ``Endpoint`` table serves by
calling the route, so a remote workspace's services have the in-process interface.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
import pydantic_core

from conveyor import errors
from conveyor.server.auth import PROJECT_HEADER
from conveyor.server.endpoints import BODY_VERBS, Endpoint, signature_of

API_PREFIX = "/api/v1"
ARROW = "application/vnd.apache.arrow.stream"


def _error_classes() -> dict[str, type[errors.ConveyorError]]:
    found: dict[str, type[errors.ConveyorError]] = {}
    pending: list[type[errors.ConveyorError]] = [errors.ConveyorError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


_ERRORS = _error_classes()


class ServerClient:
    """An authenticated connection to a Conveyor server.

    Args:
        url: the server's base URL (``http://host:port``).
        token: an API token (``conveyor tokens create``); none for a server without auth.
        project: the project whose role grants apply.
    """

    def __init__(self, url: str, token: str | None = None, project: str | None = None, timeout: float = 300.0) -> None:
        headers = {"user-agent": "conveyor-sdk"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        if project:
            headers[PROJECT_HEADER] = project
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __repr__(self) -> str:
        return f"ServerClient({self.url!r})"

    def close(self) -> None:
        """Release the connection pool."""
        self.http.close()

    def request(self, verb: str, path: str, **options: Any) -> httpx.Response:
        """Send a request to ``/api/v1{path}``; a 4xx/5xx answer raises its ``ConveyorError``."""
        try:
            response = self.http.request(verb, API_PREFIX + path, **options)
        except httpx.TransportError as exc:
            raise errors.Unavailable(f"Conveyor server at {self.url} unreachable: {exc}", field="server") from exc
        if response.status_code >= 400:
            raise self._error(response)
        return response

    def stream(self, verb: str, path: str, **options: Any) -> Iterator[bytes]:
        """The body of a streamed response, chunk by chunk."""
        try:
            with self.http.stream(verb, API_PREFIX + path, **options) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._error(response)
                yield from response.iter_bytes()
        except httpx.TransportError as exc:
            raise errors.Unavailable(f"Conveyor server at {self.url} unreachable: {exc}", field="server") from exc

    def _error(self, response: httpx.Response) -> errors.ConveyorError:
        try:
            body = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            return errors.ConveyorError(f"server answered {response.status_code}: {response.text[:200]}")
        cls = _ERRORS.get(body.get("code"), errors.ConveyorError)
        return cls(body.get("message") or f"server answered {response.status_code}", field=body.get("field"))

    def call(self, service_type: type, prefix: str, endpoint: Endpoint, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        """Call ``endpoint`` with a method's arguments and return its result as the method would."""
        signature = signature_of(service_type, endpoint.method)
        names = [param.name for param in signature.parameters]
        values = dict(zip(names, args, strict=False))
        values.update(kwargs)
        path = endpoint.path
        payload: dict[str, Any] = {}
        for param in signature.parameters:
            if param.name not in values:
                continue
            value = values[param.name]
            if param.name in endpoint.path_params:
                path = path.replace(f"{{{param.name}}}", quote(str(value), safe="")).replace(
                    f"{{{param.name}:path}}", quote(str(value), safe="/"))
            elif value is not None:
                payload[param.name] = param.adapter.dump_python(value, mode="python")
        if endpoint.verb in BODY_VERBS:
            content = pydantic_core.to_json(payload, inf_nan_mode="strings")
            response = self.request(endpoint.verb, prefix + path, content=content, headers={"content-type": "application/json"})
        else:
            response = self.request(endpoint.verb, prefix + path, params=pydantic_core.to_jsonable_python(payload))
        return signature.result.validate_json(response.content)


class RemoteService:
    """A capability's service over HTTP: every served method becomes a call of its route."""

    service_type: ClassVar[type]
    prefix: ClassVar[str]
    endpoints: ClassVar[Sequence[Endpoint]]

    def __init__(self, client: ServerClient) -> None:
        self.client = client
        self._routes = {endpoint.method: endpoint for endpoint in self.endpoints}

    def call_route(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the route serving method ``name`` with its arguments."""
        return self.client.call(self.service_type, self.prefix, self._routes[name], args, kwargs)

    def __getattr__(self, name: str) -> Any:
        routes = self.__dict__.get("_routes", {})
        if name not in routes:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r} (not served over HTTP)")

        def call(*args: Any, **kwargs: Any) -> Any:
            return self.call_route(name, *args, **kwargs)

        call.__name__ = name
        return call
