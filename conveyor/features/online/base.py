"""The contract every online store backend honours, and the batch decoding they share.

The online store serves the latest materialised feature values per entity key. Writers
never touch live data directly: a materialisation job *stages* rows under its job id, then
*commits* them in one atomic step guarded by event time, so a reader sees either the old
table or the new one, a crashed job leaves nothing behind in the live table, and a
backfill of older rows can never move a value back in time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import pyarrow as pa

from conveyor.errors import ValidationError
from conveyor.features.dtypes import DTYPES

KEY_COLUMN = "__key"
TS_COLUMN = "__ts"
_NAME = re.compile(r"^[a-z0-9_]+$")


@dataclass(frozen=True)
class OnlineTable:
    """One live table of the online store: the values of one version of a feature view.

    ``name`` becomes part of a SQL table name or Redis key, hence the restricted alphabet;
    it carries the view's version (``customer_stats__v3``) so a changed schema gets a new
    table instead of altering a served one. ``features`` lists ``(feature, dtype)`` in the
    column order of staged batches and of the tuples ``read`` returns.
    """

    name: str
    features: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValidationError(f"online table name {self.name!r} must match [a-z0-9_]+", field="name")
        for feature, dtype in self.features:
            if dtype not in DTYPES:
                raise ValidationError(f"online table {self.name}: feature {feature!r} has unknown dtype {dtype!r}",
                                      field="features")


@runtime_checkable
class OnlineStore(Protocol):
    """Latest feature values per entity key, written by stage-then-commit, read by key.

    A protocol rather than a base class so backends share no state and tests can check
    any object with ``isinstance(obj, OnlineStore)``. Batches hold ``__key`` (string, the
    encoded entity key), ``__ts`` (int64 event time in epoch microseconds) and one column
    per feature in ``table.features`` order.
    """

    def stage(self, table: OnlineTable, job: str, batch: pa.RecordBatch) -> None:
        """Durably add rows to ``job``'s staging area of ``table``; invisible to ``read`` until commit.

        Within one job the row with the greatest ``__ts`` per key is kept.
        """

    def commit(self, table: OnlineTable, job: str) -> int:
        """Merge ``job``'s staged rows into the live table atomically; return how many were applied.

        A staged row replaces the live row of its key only if its ``__ts`` >= the live one.
        The staging area is gone afterwards; committing an unknown job applies nothing.
        """

    def discard(self, table: OnlineTable, job: str) -> None:
        """Forget ``job``'s staged rows without touching the live table."""

    def read(self, table: OnlineTable, keys: Sequence[str]) -> list[tuple | None]:
        """Per key, in order: ``(ts_us, v1, v2, ...)`` as plain Python values, or None when absent."""

    def count(self, table: OnlineTable) -> int:
        """The number of keys in the live table."""

    def drop(self, table: OnlineTable) -> None:
        """Delete the live table and every staging area of it."""

    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""


def batch_columns(table: OnlineTable, batch: pa.RecordBatch) -> list[list[Any]]:
    """The batch as plain Python columns ``[keys, ts, f1, ...]``; timestamps become int epoch µs.

    Backends bind these values directly, so the batch layout is checked here once.
    """
    expected = [KEY_COLUMN, TS_COLUMN, *(name for name, _ in table.features)]
    if batch.schema.names != expected:
        raise ValidationError(f"online table {table.name}: batch columns {batch.schema.names} "
                              f"should be {expected}", field="batch")
    if batch.column(0).null_count or batch.column(1).null_count:
        raise ValidationError(f"online table {table.name}: {KEY_COLUMN} and {TS_COLUMN} may not be null",
                              field="batch")
    columns = []
    for array in batch.columns:
        if pa.types.is_timestamp(array.type):  # sub-microsecond digits are dropped, not refused
            array = array.cast(pa.timestamp("us"), safe=False).cast(pa.int64())
        columns.append(array.to_pylist())
    return columns
