"""The correctness checks of ``bench/features.py``, run in the parent process.

- ``check_historical``: a contender's training set against the limit's, row for row.
  Rows are aligned by ``row_id`` (each entity row's position in the entity frame), so a
  tool that reorders rows (Feast does not promise the order) is still checked value by
  value; whether the order was kept is reported apart. Dropped rows are explained: unknown
  key (no feature row at all), timestamp before the entity's first feature row, or other.
  Features are equal when both are NaN/null or both hold the same float64.
- ``check_sample``: the online values of the sample keys against each entity's latest row;
  a null is right when the latest row was already older than the TTL at read time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from _features_common import FEATURES, KEY, ROW_ID, TIMESTAMP

TTL_MARGIN_US = 3_600 * 1_000_000  # an hour either side of the TTL boundary counts as both


@dataclass
class HistoricalCheck:
    """How one training set compares with the limit's."""

    rows: int
    expected: int
    order_kept: bool
    dropped: int = 0
    dropped_unknown: int = 0  # key with no feature row at all
    dropped_before_first: int = 0  # timestamp before the entity's first feature row
    dropped_expired: int = 0  # the latest row at that time is older than the TTL
    extra: int = 0  # duplicated or unknown row_id
    wrong: int = 0
    wrong_null: int = 0  # null where the limit has values
    wrong_value: int = 0  # values where the limit has nulls, or other values
    first_wrong: int | None = None  # row_id
    missing_columns: tuple[str, ...] = ()

    @property
    def all_right(self) -> bool:
        """Same rows, same order, same values."""
        return (self.order_kept and not self.missing_columns and self.rows == self.expected
                and not (self.dropped or self.extra or self.wrong))

    def describe(self) -> str:
        """One line for the table."""
        if self.missing_columns:
            return f"[red]missing columns {', '.join(self.missing_columns)}[/]"
        if self.all_right:
            return f"{self.rows:,} rows, all right, order kept"
        parts = [f"{self.rows:,} rows"]
        if self.dropped:
            other = self.dropped - self.dropped_unknown - self.dropped_before_first - self.dropped_expired
            parts.append(f"[red]{self.dropped:,} dropped[/] ({self.dropped_before_first:,} before their entity's first "
                         f"feature row, {self.dropped_expired:,} past the TTL, {self.dropped_unknown:,} with no "
                         f"feature row at all, {other:,} other)")
        if self.extra:
            parts.append(f"[red]{self.extra:,} extra[/]")
        if self.wrong:
            parts.append(f"[red]{self.wrong:,} wrong[/] ({self.wrong_null:,} null instead of values, "
                         f"{self.wrong_value:,} other values; first row_id {self.first_wrong})")
        else:
            parts.append("the others right" if self.dropped or self.extra else "all values right")
        if not self.order_kept:
            parts.append("[yellow]order not kept[/]")
        return "; ".join(parts)


def first_rows(features: Path) -> pd.Series:
    """Each entity's first feature timestamp (epoch µs), indexed by key."""
    query = f"SELECT {KEY}, epoch_us(min({TIMESTAMP})) AS first FROM read_parquet('{features}') GROUP BY {KEY}"
    return duckdb.connect().sql(query).df().set_index(KEY)["first"]


def _micros(column: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(column, utc=True)
    return ((stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(1, "us")).to_numpy(dtype=np.int64)


def _normalise(frame: pd.DataFrame) -> pd.DataFrame:
    columns = {KEY: frame[KEY].to_numpy(dtype=np.int64), TIMESTAMP: _micros(frame[TIMESTAMP]),
               ROW_ID: frame[ROW_ID].to_numpy(dtype=np.int64)}
    for name in FEATURES:
        columns[name] = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.DataFrame(columns)


def check_historical(result_path: Path, limit_path: Path, entity_rows: Path, firsts: pd.Series) -> HistoricalCheck:
    """Compare the training set in ``result_path`` with the limit's."""
    result, limit = pd.read_parquet(result_path), _normalise(pd.read_parquet(limit_path))
    missing = tuple(c for c in (KEY, TIMESTAMP, ROW_ID, *FEATURES) if c not in result.columns)
    if missing:
        return HistoricalCheck(len(result), len(limit), False, missing_columns=missing)
    ours = _normalise(result)
    order_kept = len(ours) == len(limit) and bool((ours[ROW_ID].to_numpy() == limit[ROW_ID].to_numpy()).all())
    duplicated = ours[ROW_ID].duplicated()
    unknown = ~ours[ROW_ID].isin(limit[ROW_ID])
    check = HistoricalCheck(len(ours), len(limit), order_kept, extra=int((duplicated | unknown).sum()))
    aligned = ours[~duplicated & ~unknown].set_index(ROW_ID)
    present = limit[ROW_ID].isin(aligned.index).to_numpy()
    check.dropped = int((~present).sum())
    if check.dropped:
        entity_frame = pd.read_parquet(entity_rows).set_index(ROW_ID)
        gone = entity_frame.loc[limit[ROW_ID].to_numpy()[~present]]
        first = firsts.reindex(gone[KEY].to_numpy()).to_numpy()
        check.dropped_unknown = int(np.isnan(first).sum())
        before = _micros(gone[TIMESTAMP]) < np.nan_to_num(first, nan=-np.inf)
        check.dropped_before_first = int(before.sum())
        all_null = limit.loc[~present, list(FEATURES)].isna().all(axis=1).to_numpy()
        check.dropped_expired = int((all_null & ~before & ~np.isnan(first)).sum())
    expected = limit[present].reset_index(drop=True)
    got = aligned.loc[expected[ROW_ID].to_numpy()].reset_index()
    wrong = (got[KEY].to_numpy() != expected[KEY].to_numpy()) | (got[TIMESTAMP].to_numpy() != expected[TIMESTAMP].to_numpy())
    null_instead = np.zeros(len(expected), dtype=bool)
    for name in FEATURES:
        a, b = got[name].to_numpy(), expected[name].to_numpy()
        differs = ~((a == b) | (np.isnan(a) & np.isnan(b)))
        wrong |= differs
        null_instead |= differs & np.isnan(a)
    check.wrong = int(wrong.sum())
    check.wrong_null = int((wrong & null_instead).sum())
    check.wrong_value = check.wrong - check.wrong_null
    if check.wrong:
        check.first_wrong = int(expected[ROW_ID].to_numpy()[wrong][0])
    return check


@dataclass
class SampleCheck:
    """How one store's online values of the sample keys compare with the latest rows."""

    keys: int
    right: int = 0
    expired: int = 0  # null because the latest row is past the TTL (right)
    served_expired: int = 0  # values although the latest row is past the TTL
    wrong: int = 0
    first_wrong: str | None = None

    def describe(self) -> str:
        """One line for the table."""
        text = f"{self.right:,}/{self.keys:,} right"
        if self.expired:
            text += f" ({self.expired:,} null: past the TTL)"
        if self.served_expired:
            text += f"; {self.served_expired:,} served although past the TTL"
        if self.wrong:
            text += f"; [red]{self.wrong:,} wrong[/] (first: {self.first_wrong})"
        return text


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def check_sample(got: list[list[Any] | None], expected: list[list[Any] | None], ttl_cut_us: int) -> SampleCheck:
    """``got``: ``[_, f0, ...]`` or None per key; ``expected``: ``[ts_us, f0, ...]`` or None;
    a latest row older than ``ttl_cut_us`` (now minus the TTL) may be served as null."""
    check = SampleCheck(len(expected))
    for index, (mine, latest) in enumerate(zip(got, expected, strict=True)):
        if latest is None:
            ok = mine is None
        else:
            expired = latest[0] < ttl_cut_us + TTL_MARGIN_US
            if mine is None:
                ok = expired
                check.expired += ok
            else:
                ok = all(_same(a, b) for a, b in zip(mine[1:], latest[1:], strict=True))
                check.served_expired += ok and latest[0] < ttl_cut_us - TTL_MARGIN_US
        if ok:
            check.right += 1
        else:
            check.wrong += 1
            check.first_wrong = check.first_wrong or f"key #{index}: {mine!r:.80} instead of {latest!r:.80}"
    return check
