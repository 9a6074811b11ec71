"""Settings documents users write in YAML (alert rules, retraining policies): reading the
file and checking it against its Pydantic schema, with errors that name the file, the
line or the field, so a typo is refused instead of becoming a setting that never acts."""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml

from conveyor.errors import ValidationError

M = TypeVar("M", bound=pydantic.BaseModel)


def read_yaml(path: Path, what: str) -> Any:
    """The parsed YAML of ``path`` (``what`` names the file in errors: "policy file").

    Raises:
        ValidationError: the file is unreadable, or not YAML (the message gives the line).
    """
    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ValidationError(f"cannot read {what} {path}: {exc.strerror}", field="file") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise ValidationError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})", field="file") from exc


def field_path(location: tuple[int | str, ...], variants: Collection[str], default: str) -> str:
    """``triggers[1].above`` for pydantic's ``('triggers', 1, 'drift', 'above')``: list
    positions in brackets, and the tag pydantic inserts for a union member (one of
    ``variants``, right after a position) left out."""
    text = ""
    for index, part in enumerate(location):
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in variants and index > 0 and isinstance(location[index - 1], int):
            continue
        else:
            text += f".{part}" if text else str(part)
    return text or default


def validate_document(schema: type[M], document: Any, source: str, what: str,
                      where: Callable[[tuple[int | str, ...]], str]) -> M:
    """``document`` checked against ``schema``.

    Raises:
        ValidationError: not a mapping, or its first problem as ``"<source> <field>: <problem>"``
            with ``field`` set.
    """
    if not isinstance(document, dict):
        raise ValidationError(f"{source}: expected a mapping of {what} settings, got {type(document).__name__}",
                              field=what)
    try:
        return schema.model_validate(document)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        field = where(error["loc"])
        message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"].removeprefix("Value error, ")
        raise ValidationError(f"{source} {field}: {message}", field=field) from None
