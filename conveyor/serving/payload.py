"""Request bodies to DataFrames, and the problems of a bad request, each naming its field.

Two shapes are accepted, as MLflow and KServe users send them: records
(``{"instances": [{"income": 52000, "grade": "B"}]}``) and columnar
(``{"columns": ["income", "grade"], "data": [[52000, "B"]]}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import pandas as pd

from conveyor.registry.packaging import Signature

SHAPES = 'expected {"instances": [{...}, ...]} or {"columns": [...], "data": [[...], ...]}'


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request: the field (a column, or ``body``) and what."""

    field: str
    message: str


class BadRequest(Exception):
    """A request the server refuses with 422; ``problems`` name every offending field."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems

    def body(self) -> dict[str, Any]:
        """The JSON answer."""
        return {"code": "invalid", "message": str(self),
                "errors": [{"field": p.field, "message": p.message} for p in self.problems]}


def _refuse(field: str, message: str) -> BadRequest:
    return BadRequest([Problem(field, message)])


def parse_frame(body: bytes) -> pd.DataFrame:
    """The rows of a request body as a DataFrame (column types as JSON gives them)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _refuse("body", f"not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise _refuse("body", SHAPES)
    if "instances" in document:
        rows = document["instances"]
        if not isinstance(rows, list) or not rows or not all(isinstance(row, dict) for row in rows):
            raise _refuse("instances", "must be a non-empty list of objects (column name -> value)")
        return pd.DataFrame.from_records(rows)
    if "columns" in document and "data" in document:
        columns, data = document["columns"], document["data"]
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise _refuse("columns", "must be a list of column names")
        if not isinstance(data, list) or not data:
            raise _refuse("data", "must be a non-empty list of rows")
        for index, row in enumerate(data):
            if not isinstance(row, list) or len(row) != len(columns):
                raise _refuse(f"data[{index}]", f"must be a list of {len(columns)} values, one per column")
        return pd.DataFrame(data, columns=columns)
    raise _refuse("body", SHAPES)


def problems(signature: Signature, frame: pd.DataFrame) -> list[Problem]:
    """Every column of ``frame`` that does not fit ``signature``, one problem each (the
    slow path, taken only after the one-pass check has refused the frame)."""
    return [Problem(field, message) for field, message in signature.column_errors(frame, "coerce").items()]
