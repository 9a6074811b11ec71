"""Mergeable, compact summaries of one column: what every drift and quality test needs,
so a reference is profiled once and never read again.

A numeric column keeps counts on a fixed grid of edges (the reference's quantiles,
exact minimum and maximum included), its moments, its range and the sums of values
beyond the grid's ends (which make Wasserstein's tails exact). A categorical column
keeps the count of every level. Both merge by addition, so batches, files and Ray
workers are summarised apart and combined.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

OTHER = "__other__"
MAX_LEVELS = 10_000


@dataclass
class NumericSketch:
    """Counts of a numeric column on ``edges``.

    ``counts`` has one more slot than ``edges``: slot 0 holds values up to ``edges[0]``,
    slot ``i`` values in ``(edges[i-1], edges[i]]`` and the last slot values above
    ``edges[-1]``. ``below_sum`` and ``above_sum`` are the sums of the first and last slot;
    ``under`` counts the values strictly below ``edges[0]`` (out of the reference's range).
    """

    edges: np.ndarray
    counts: np.ndarray
    nulls: int = 0
    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = float("inf")
    max: float = float("-inf")
    below_sum: float = 0.0
    above_sum: float = 0.0
    under: int = 0

    kind = "numeric"

    @classmethod
    def empty(cls, edges: np.ndarray) -> NumericSketch:
        """A sketch of no values on ``edges``."""
        return cls(edges=np.asarray(edges, dtype=np.float64), counts=np.zeros(len(edges) + 1, dtype=np.int64))

    @property
    def rows(self) -> int:
        """Values and nulls."""
        return self.count + self.nulls

    @property
    def std(self) -> float:
        """Population standard deviation of the values."""
        return float(np.sqrt(self.m2 / self.count)) if self.count else 0.0

    def add(self, values: np.ndarray) -> None:
        """Count a batch of values; NaN and infinities count as nulls.

        Sorting the batch and searching the edges in it is about twice as fast as
        searching every value among the edges, and NumPy sorts without the GIL."""
        ordered = np.sort(values)
        start = int(np.searchsorted(ordered, -np.inf, side="right"))
        stop = int(np.searchsorted(ordered, np.inf, side="left"))
        self.nulls += len(ordered) - (stop - start)
        ordered = ordered[start:stop]
        if not len(ordered):
            return
        below_edge = np.searchsorted(ordered, self.edges, side="right")
        self.counts += np.diff(below_edge, prepend=0, append=len(ordered))
        self.under += int(np.searchsorted(ordered, self.edges[0], side="left"))
        self.below_sum += float(ordered[: below_edge[0]].sum())
        self.above_sum += float(ordered[below_edge[-1] :].sum())
        mean = float(ordered.mean())
        self._merge_moments(len(ordered), mean, float(np.square(ordered - mean).sum()))
        self.min = min(self.min, float(ordered[0]))
        self.max = max(self.max, float(ordered[-1]))

    def _merge_moments(self, count: int, mean: float, m2: float) -> None:
        total = self.count + count
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.count * count / total
        self.mean += delta * count / total
        self.count = total

    def merge(self, other: NumericSketch) -> None:
        """Add ``other``, a sketch on the same edges."""
        self.counts += other.counts
        self.nulls += other.nulls
        self.below_sum += other.below_sum
        self.above_sum += other.above_sum
        self.under += other.under
        if other.count:
            self._merge_moments(other.count, other.mean, other.m2)
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def cdf(self) -> np.ndarray:
        """Share of values at or below each edge."""
        return np.cumsum(self.counts)[:-1] / max(self.count, 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "kind": "numeric", "edges": _pack(self.edges), "counts": _pack(self.counts), "nulls": self.nulls,
            "count": self.count, "mean": self.mean, "m2": self.m2, "min": _finite(self.min), "max": _finite(self.max),
            "below_sum": self.below_sum, "above_sum": self.above_sum, "under": self.under,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NumericSketch:
        """Inverse of ``to_dict``."""
        return cls(
            edges=_unpack(data["edges"], np.float64), counts=_unpack(data["counts"], np.int64), nulls=data["nulls"],
            count=data["count"], mean=data["mean"], m2=data["m2"],
            min=float("inf") if data["min"] is None else data["min"],
            max=float("-inf") if data["max"] is None else data["max"],
            below_sum=data["below_sum"], above_sum=data["above_sum"], under=data["under"],
        )


@dataclass
class CategoricalSketch:
    """Counts of every level of a column, as text; beyond ``MAX_LEVELS`` levels the
    rarest share ``"__other__"``."""

    levels: dict[str, int] = field(default_factory=dict)
    nulls: int = 0

    kind = "categorical"

    @property
    def count(self) -> int:
        """Non-null values."""
        return sum(self.levels.values())

    @property
    def rows(self) -> int:
        """Values and nulls."""
        return self.count + self.nulls

    def add(self, values: list[str], counts: np.ndarray, nulls: int) -> None:
        """Count a batch given as distinct values and how often each occurred."""
        self.nulls += nulls
        for value, count in zip(values, counts.tolist()):
            self.levels[value] = self.levels.get(value, 0) + count
        self._cap()

    def merge(self, other: CategoricalSketch) -> None:
        """Add ``other``."""
        self.nulls += other.nulls
        for value, count in other.levels.items():
            self.levels[value] = self.levels.get(value, 0) + count
        self._cap()

    def _cap(self) -> None:
        if len(self.levels) <= MAX_LEVELS:
            return
        ranked = sorted(self.levels.items(), key=lambda item: -item[1])
        kept = dict(ranked[: MAX_LEVELS - 1])
        kept[OTHER] = kept.get(OTHER, 0) + sum(count for _, count in ranked[MAX_LEVELS - 1 :])
        self.levels = kept

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"kind": "categorical", "levels": self.levels, "nulls": self.nulls}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CategoricalSketch:
        """Inverse of ``to_dict``."""
        return cls(levels=dict(data["levels"]), nulls=data["nulls"])


Sketch = NumericSketch | CategoricalSketch


@dataclass
class Profile:
    """Sketches of a frame's columns, with each column's Arrow type (for schema checks)."""

    rows: int
    columns: dict[str, Sketch]
    types: dict[str, str]

    def merge(self, other: Profile) -> None:
        """Add ``other``, a profile of more rows with the same plan."""
        self.rows += other.rows
        for name, sketch in other.columns.items():
            self.columns[name].merge(sketch)  # type: ignore[arg-type]

    def select(self, names: Iterable[str]) -> Profile:
        """The profile of the ``names`` it has (sketches shared, not copied)."""
        return Profile(rows=self.rows, columns={n: self.columns[n] for n in names if n in self.columns},
                       types=self.types)

    def to_bytes(self) -> bytes:
        """Compressed JSON: a 25-column profile on a 1,000-edge grid is a few hundred kB."""
        body = {"rows": self.rows, "types": self.types, "columns": {n: s.to_dict() for n, s in self.columns.items()}}
        return zlib.compress(orjson.dumps(body), 6)

    @classmethod
    def from_bytes(cls, data: bytes) -> Profile:
        """Inverse of ``to_bytes``."""
        body = orjson.loads(zlib.decompress(data))
        columns: dict[str, Sketch] = {
            name: NumericSketch.from_dict(item) if item["kind"] == "numeric" else CategoricalSketch.from_dict(item)
            for name, item in body["columns"].items()
        }
        return cls(rows=body["rows"], columns=columns, types=body["types"])


def _pack(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode()


def _unpack(text: str, dtype: type) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype).copy()


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None
