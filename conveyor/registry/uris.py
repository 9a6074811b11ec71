"""Model URIs: ``models:/NAME/VERSION``, ``models:/NAME@ALIAS``, ``models:/NAME/latest``, ``runs:/RUN/PATH``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from conveyor.errors import ValidationError

ALIAS_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}$")
LATEST = "latest"


@dataclass(frozen=True)
class ModelRef:
    """A registered model and which of its versions: a number, an alias, or the latest."""

    name: str
    version: int | None = None
    alias: str | None = None


@dataclass(frozen=True)
class RunRef:
    """A model logged in a run, at an artifact path."""

    run_id: str
    path: str


def check_model_name(name: str) -> str:
    """A registered model name: letters, digits, ``_ . -``; at most 256 characters."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValidationError(
            f"model name {name!r} must start with a letter or digit and hold only letters, digits, '_', '.', '-'",
            field="name",
        )
    return name


def check_alias(alias: str) -> str:
    """An alias: starts with a letter (so it never reads as a version number); not 'latest'."""
    if not isinstance(alias, str) or not ALIAS_PATTERN.match(alias) or alias == LATEST:
        raise ValidationError(
            f"alias {alias!r} must start with a letter, hold only letters, digits, '_', '.', '-', and not be 'latest'",
            field="alias",
        )
    return alias


def parse_version(value: int | str) -> int | str:
    """A version number, or an alias when ``value`` is not a number."""
    if isinstance(value, bool):
        raise ValidationError(f"version must be a number or an alias, got {value!r}", field="version")
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        number = int(value)
        if number < 1:
            raise ValidationError(f"version must be at least 1, got {number}", field="version")
        return number
    return check_alias(value) if value != LATEST else LATEST


def parse_model_uri(uri: str) -> ModelRef | RunRef:
    """Parse a model URI; ``ValidationError`` naming the expected forms if it is none of them."""
    forms = "expected models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME/latest or runs:/RUN_ID/PATH"
    if not isinstance(uri, str):
        raise ValidationError(f"model URI must be a string, got {type(uri).__name__}; {forms}", field="uri")
    if uri.startswith("runs:/"):
        run_id, _, path = uri[len("runs:/"):].strip("/").partition("/")
        if not run_id or not path:
            raise ValidationError(f"model URI {uri!r}: {forms}", field="uri")
        return RunRef(run_id, path.strip("/"))
    if uri.startswith("models:/"):
        rest = uri[len("models:/"):].strip("/")
        if "@" in rest:
            name, _, alias = rest.partition("@")
            return ModelRef(check_model_name(name), alias=check_alias(alias))
        name, _, version = rest.partition("/")
        if name and version:
            parsed = parse_version(version)
            if parsed == LATEST:
                return ModelRef(check_model_name(name))
            if isinstance(parsed, int):
                return ModelRef(check_model_name(name), version=parsed)
    raise ValidationError(f"model URI {uri!r}: {forms}", field="uri")
