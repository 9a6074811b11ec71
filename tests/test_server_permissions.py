"""Every API route, called by every role, answers as the permission matrix says.

The test reads the routes from the server's own OpenAPI schema, so a new route is
covered the day it is added: each must name its permission (``x-conveyor-permission``),
refuse a request without a token (401) and refuse exactly the roles the matrix leaves
out (403 naming the permission), whatever the arguments.
"""

from __future__ import annotations

import io
from typing import Any

import httpx
import pandas as pd
import pyarrow as pa
import pytest
from server_support import serve, token_for

from conveyor.governance.permissions import MATRIX, ROLES, Action

AUTHENTICATED_ONLY = {
    ("GET", "/api/v1/users/me"),
    ("POST", "/api/v1/tokens"),
    ("GET", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/{token_id}"),
}
"""Routes any signed-in user may call (their own identity and tokens): no role needed."""

ARROW = "application/vnd.apache.arrow.stream"


def _arrow() -> bytes:
    table = pa.Table.from_pandas(pd.DataFrame({"x": [1.0]}))
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def example(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> Any:
    """A small value valid for a JSON schema (required fields only)."""
    if "$ref" in schema:
        return example(components[schema["$ref"].split("/")[-1]], components, depth + 1)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [option for option in schema[key] if option.get("type") != "null"] or schema[key]
            return example(options[0], components, depth + 1)
    if "allOf" in schema:
        return example(schema["allOf"][0], components, depth + 1)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {name: example(schema["properties"][name], components, depth + 1) for name in schema.get("required", [])}
    if kind == "array":
        items = schema.get("prefixItems")
        if items:
            return [example(item, components, depth + 1) for item in items]
        return [example(schema["items"], components, depth + 1)] if "items" in schema else []
    return {"integer": 1, "number": 1.0, "boolean": False, "null": None}.get(kind, "x")


def requests_for(spec: dict[str, Any]) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    """``(verb, path template, permission, httpx options)`` for every API route of the schema."""
    components = spec.get("components", {}).get("schemas", {})
    found = []
    for template, operations in spec["paths"].items():
        if not template.startswith("/api/v1"):
            continue
        for verb, operation in operations.items():
            path = template
            params: dict[str, Any] = {}
            for parameter in operation.get("parameters", []):
                value = example(parameter.get("schema", {}), components)
                if parameter["in"] == "path":
                    path = path.replace(f"{{{parameter['name']}}}", str(value))
                elif parameter["in"] == "query" and parameter.get("required"):
                    params[parameter["name"]] = value
            options: dict[str, Any] = {"params": params}
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                options["json"] = example(content["application/json"]["schema"], components)
            elif ARROW in content:
                options["content"] = _arrow()
                options["headers"] = {"content-type": ARROW}
            elif content:
                options["content"] = b"x"
            found.append((verb.upper(), path, operation.get("x-conveyor-permission"), options))
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    from conveyor.core.config import load_settings
    from conveyor.core.workspace import Workspace

    root = tmp_path_factory.mktemp("permissions")
    workspace = Workspace(load_settings(root))
    tokens = {role: token_for(workspace, f"user-{role}", [role]) for role in ROLES}
    tokens["nobody"] = token_for(workspace, "user-nobody", [])
    with serve(workspace) as url, httpx.Client(base_url=url, timeout=60) as client:
        spec = client.get("/openapi.json", headers={"authorization": f"Bearer {tokens['platform-admin']}"}).json()
        yield client, tokens, spec
    workspace.close()


def test_every_api_route_names_a_permission_of_the_matrix(server) -> None:  # noqa: ANN001
    _, _, spec = server
    routes = requests_for(spec)
    assert len(routes) > 60, "the schema lists the API's routes"
    unnamed = {(verb, template) for verb, template, permission, _ in _templates(spec) if permission is None}
    assert unnamed == AUTHENTICATED_ONLY
    assert {permission for _, _, permission, _ in routes if permission} <= {action.value for action in Action}


def _templates(spec: dict[str, Any]) -> list[tuple[str, str, str | None, None]]:
    return [
        (verb.upper(), template, operation.get("x-conveyor-permission"), None)
        for template, operations in spec["paths"].items() if template.startswith("/api/v1")
        for verb, operation in operations.items()
    ]


def test_without_a_token_every_route_but_healthz_is_401(server) -> None:  # noqa: ANN001
    client, _, spec = server
    assert client.get("/healthz").status_code == 200
    for verb, path, _, options in requests_for(spec):
        response = client.request(verb, path, **options)
        assert response.status_code == 401, (verb, path, response.text)
        assert response.json()["error"]["code"] == "unauthenticated"
    assert client.get("/openapi.json").status_code == 401
    bad = client.get("/api/v1/experiments", headers={"authorization": "Bearer cvy_not-a-token"})
    assert bad.status_code == 401 and "token" in bad.json()["error"]["message"]


@pytest.mark.parametrize("role", [*ROLES, "nobody"])
def test_each_role_gets_exactly_the_routes_the_matrix_grants(server, role: str) -> None:  # noqa: ANN001
    client, tokens, spec = server
    headers = {"authorization": f"Bearer {tokens[role]}"}
    mismatches = []
    for verb, path, permission, options in requests_for(spec):
        response = client.request(verb, path, **{**options, "headers": {**options.get("headers", {}), **headers}})
        allowed = permission is None or role in MATRIX[Action(permission)]
        if allowed and response.status_code in (401, 403):
            mismatches.append(f"{verb} {path}: {role} may {permission} but got {response.status_code} {response.text[:200]}")
        elif not allowed:
            body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
            message = body.get("error", {}).get("message", "")
            if response.status_code != 403 or permission not in message:
                mismatches.append(f"{verb} {path}: {role} lacks {permission} but got {response.status_code} {response.text[:200]}")
    assert not mismatches, "\n".join(mismatches)
