"""Reading a pipeline file: YAML with ``--set`` overrides, checked by the schema, errors
pointing at the file, line and key."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pydantic
import yaml

from conveyor.errors import ValidationError
from conveyor.pipelines.spec import Pipeline


def apply_overrides(document: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``document`` with each ``dotted.key=value`` set; values are read as YAML (``6``, ``0.1``, ``[a, b]``)."""
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"--set {override!r}: expected KEY=VALUE such as train.params.max_depth=6", field="set")
        node = document
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValidationError(f"--set {override!r}: {part!r} is not a section", field=key)
            node = child
        try:
            node[parts[-1]] = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValidationError(f"--set {override!r}: the value is not valid YAML ({exc.problem})", field=key) from exc
    return document


def parse_pipeline(document: Any, overrides: Sequence[str] = (), source: str = "pipeline", nodes: Any = None) -> Pipeline:
    """Build a ``Pipeline`` from plain data, raising one ``ValidationError`` that names the
    key (and the line, when ``nodes`` is the composed YAML) of the first problem."""
    if not isinstance(document, dict):
        raise ValidationError(f"{source}: expected a mapping of pipeline settings at the top", field="pipeline")
    document = apply_overrides(document, overrides)
    try:
        return Pipeline.model_validate(document)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        location = [str(part) for part in error["loc"]]
        key = ".".join(location) or "pipeline"
        line = _line_of(nodes, location)
        where = f"{source} line {line}" if line else source
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        raise ValidationError(f"{where}, key {key}: {message}", field=key) from None


def load_pipeline(path: str | Path, overrides: Sequence[str] = ()) -> Pipeline:
    """Read and check a pipeline YAML file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValidationError(f"cannot read pipeline file {path}: {exc.strerror}", field="pipeline") from exc
    try:
        nodes = yaml.compose(text)
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise ValidationError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})", field="pipeline") from exc
    return parse_pipeline(document, overrides, str(path), nodes)


def _line_of(node: Any, location: list[str]) -> int | None:
    """The 1-based line of the deepest YAML node on ``location`` that exists in the file."""
    line = None
    for part in location:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == part), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
            line = node.start_mark.line + 1
        else:
            break
    return line
