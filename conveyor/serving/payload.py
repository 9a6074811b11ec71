"""Request bodies as rows, and the problems of a bad request, each naming its field.

Two shapes are accepted, as MLflow and KServe users send them: records
(``{"instances": [{"income": 52000, "grade": "B"}]}``) and columnar
(``{"columns": ["income", "grade"], "data": [[52000, "B"]]}``). A body stays plain
Python lists until something needs a DataFrame: the numeric fast path reads values
straight from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
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


def refuse(field: str, message: str) -> BadRequest:
    """A ``BadRequest`` with one problem."""
    return BadRequest([Problem(field, message)])


class Payload:
    """The rows of one request, as records (one dict per row) or columns and row lists."""

    def __init__(self, records: list[dict[str, Any]] | None = None, columns: list[str] | None = None,
                 data: list[list[Any]] | None = None) -> None:
        self.records = records
        self.columns = columns
        self.data = data

    def __len__(self) -> int:
        return len(self.records if self.records is not None else self.data or ())

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame (column types as JSON gives them)."""
        if self.records is not None:
            return pd.DataFrame.from_records(self.records)
        return pd.DataFrame(self.data, columns=self.columns)

    def as_records(self) -> list[dict[str, Any]]:
        """The rows as one dict each (what the prediction log's writer stores)."""
        if self.records is not None:
            return self.records
        return [dict(zip(self.columns or (), row)) for row in self.data or ()]

    def value_rows(self, names: list[str]) -> list[list[Any]] | None:
        """Each row's values of ``names``, in that order; None when a row lacks one."""
        if self.records is not None:
            try:
                return [[row[name] for name in names] for row in self.records]
            except KeyError:
                return None
        positions = {name: index for index, name in enumerate(self.columns or ())}
        try:
            picks = [positions[name] for name in names]
        except KeyError:
            return None
        return [[row[index] for index in picks] for row in self.data or ()]

    def column(self, name: str) -> list[Any] | None:
        """Every row's value of ``name``; None when a row lacks it."""
        rows = self.value_rows([name])
        return None if rows is None else [row[0] for row in rows]

    def take(self, positions: list[int]) -> Payload:
        """The rows at ``positions``, in that order."""
        if self.records is not None:
            return Payload(records=[self.records[i] for i in positions])
        data = self.data or []
        return Payload(columns=self.columns, data=[data[i] for i in positions])


def parse_payload(body: bytes) -> Payload:
    """The rows of a request body, checked for shape (not yet against any signature)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise refuse("body", f"not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise refuse("body", SHAPES)
    if "instances" in document:
        rows = document["instances"]
        if not isinstance(rows, list) or not rows or not all(isinstance(row, dict) for row in rows):
            raise refuse("instances", "must be a non-empty list of objects (column name -> value)")
        return Payload(records=rows)
    if "columns" in document and "data" in document:
        columns, data = document["columns"], document["data"]
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise refuse("columns", "must be a list of column names")
        if not isinstance(data, list) or not data:
            raise refuse("data", "must be a non-empty list of rows")
        for index, row in enumerate(data):
            if not isinstance(row, list) or len(row) != len(columns):
                raise refuse(f"data[{index}]", f"must be a list of {len(columns)} values, one per column")
        return Payload(columns=columns, data=data)
    raise refuse("body", SHAPES)


def problems(signature: Signature, frame: pd.DataFrame) -> list[Problem]:
    """Every column of ``frame`` that does not fit ``signature``, one problem each (the
    slow path, taken only after the one-pass check has refused the frame)."""
    return [Problem(field, message) for field, message in signature.column_errors(frame, "coerce").items()]
