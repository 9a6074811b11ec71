"""Online feature lookups: values by entity key, each with a status.

A lookup plan (which online table, which key columns, which positions) is built once per
feature list and reused, so a lookup is the key encoding, one read per view, and
assembling the answer.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any

import pandas as pd

from conveyor.errors import ValidationError
from conveyor.features.materialize import encode_key
from conveyor.features.online import OnlineStore, OnlineTable


class FeatureStatus(str, Enum):
    """How an online value came to be what it is."""

    PRESENT = "present"
    NULL = "null"
    MISSING = "missing"
    OUTSIDE_TTL = "outside_ttl"


PRESENT, NULL, MISSING, OUTSIDE_TTL = (s.value for s in FeatureStatus)


@dataclass(frozen=True)
class ViewLookup:
    """What to read from one view version: its table, keys, feature positions and TTL."""

    table: OnlineTable
    join_keys: tuple[str, ...]
    positions: tuple[int, ...]
    outputs: tuple[str, ...]
    ttl_us: int | None
    timestamps: frozenset[str] = frozenset()


class OnlineResponse:
    """Feature values of some entities, in the order asked, with a status per value."""

    def __init__(self, keys: dict[str, list[Any]], values: dict[str, list[Any]], statuses: dict[str, list[str]]) -> None:
        self.keys = keys
        self.values = values
        self.statuses = statuses

    def to_dict(self) -> dict[str, list[Any]]:
        """Join keys and features as columns: ``{"customer_id": [...], "amount": [...]}``."""
        return {**self.keys, **self.values}

    def to_df(self, include_status: bool = False) -> pd.DataFrame:
        """The answer as a DataFrame; with ``include_status``, a ``<feature>__status`` column each."""
        frame = pd.DataFrame(self.to_dict())
        if include_status:
            for name, statuses in self.statuses.items():
                frame[f"{name}__status"] = statuses
        return frame

    def __repr__(self) -> str:
        return f"OnlineResponse({self.to_dict()!r})"


def _timestamp(micros: int | None) -> datetime | None:
    return None if micros is None else datetime.fromtimestamp(micros / 1e6, tz=timezone.utc)


def _rows_as_columns(entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]], keys: list[str]) -> dict[str, list[Any]]:
    if isinstance(entity_rows, Mapping):
        columns = {k: list(entity_rows[k]) for k in keys if k in entity_rows}
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValidationError("entity_rows: key columns have different lengths", field="entity_rows")
    else:
        columns = {}
        for k in keys:
            try:
                columns[k] = [row[k] for row in entity_rows]
            except KeyError:
                continue
            except TypeError as error:
                raise ValidationError("entity_rows must be a list of dicts or a dict of lists", field="entity_rows") from error
    for k in keys:
        if k not in columns:
            raise ValidationError(f"entity_rows have no join key {k!r}", field=k)
    return columns


def lookup(online: OnlineStore, plan: list[ViewLookup],
           entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]) -> OnlineResponse:
    """Read the plan's features for each entity row."""
    key_names = list(dict.fromkeys(k for view in plan for k in view.join_keys))
    columns = _rows_as_columns(entity_rows, key_names)
    now_us = time.time_ns() // 1000
    values: dict[str, list[Any]] = {}
    statuses: dict[str, list[str]] = {}
    for view in plan:
        keys = columns[view.join_keys[0]] if len(view.join_keys) == 1 else None
        encoded = [str(k) for k in keys] if keys is not None else [
            encode_key(parts) for parts in zip(*(columns[k] for k in view.join_keys))
        ]
        rows = online.read(view.table, encoded)
        for output, position in zip(view.outputs, view.positions):
            column: list[Any] = []
            status: list[str] = []
            for row in rows:
                if row is None:
                    column.append(None)
                    status.append(MISSING)
                elif view.ttl_us is not None and now_us - row[0] > view.ttl_us:
                    column.append(None)
                    status.append(OUTSIDE_TTL)
                else:
                    value = row[position]
                    column.append(value)
                    status.append(NULL if value is None else PRESENT)
            values[output] = [_timestamp(v) for v in column] if output in view.timestamps else column
            statuses[output] = status
    return OnlineResponse(columns, values, statuses)
