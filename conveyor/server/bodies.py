"""What hand-written routes share: refusing a user before reading their input, and YAML bodies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from fastapi import Request

from conveyor.errors import ValidationError
from conveyor.governance.permissions import action_of

YAML = "application/yaml"


def require(request: Request, method: Callable[..., Any]) -> None:
    """Refuse (``PermissionDenied``) a user who may not call the service ``method``, before the
    route parses anything, so a refusal never depends on the input."""
    action = action_of(method)
    if action is not None:
        request.app.state.workspace.actor.require(action)


def yaml_document(text: str | bytes, source: str) -> Any:
    """The data of a YAML (or JSON) request body.

    Raises:
        ValidationError: not YAML; the message gives the line, ``field`` is ``source``.
    """
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise ValidationError(f"{source}{line}: not valid YAML ({getattr(exc, 'problem', exc)})", field=source) from exc


def text_body(content: dict[str, Any] | None = None) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a route reading a YAML or JSON document itself."""
    return {"requestBody": {"required": True, "content": {
        YAML: {"schema": {"type": "string"}}, "application/json": {"schema": content or {"type": "object"}}}}}
