"""The data of ``bench/monitoring.py``: 20 numeric and 5 categorical columns, drift injected
in 5 numeric columns and 1 categorical column of the current side, written to Parquet.

Both sides are drawn chunk by chunk (at most ``CHUNK_ROWS`` rows in memory at a time) from
seeded generators, one per side and chunk, so a file of any size is generated in bounded
memory and is the same on every run. Files live in ``bench/.work/monitoring/`` and are
reused while their schema metadata carries the current ``DATA_VERSION`` and row count.

Runs in the project's virtualenv only; the workers get the file names.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _harness import WORK_DIR

DATA_VERSION = "monitoring-data-1"  # bump when the columns or their distributions change
FOLDER = WORK_DIR / "monitoring"
CHUNK_ROWS = 1_000_000  # rows generated at a time, and row groups of the files
SEED = 20_240_611

Sampler = Callable[[np.random.Generator, int], np.ndarray]


@dataclass(frozen=True)
class Numeric:
    """A numeric column: ``draw`` gives the reference side, ``drift`` (if any) changes the
    current side's draws (same distribution on both sides when None)."""

    name: str
    draw: Sampler
    drift: Callable[[np.ndarray], np.ndarray] | None = None
    what: str = ""  # the injected drift, for the description


@dataclass(frozen=True)
class Categorical:
    """A categorical column of string levels ``v00``, ``v01``... drawn with ``reference``
    probabilities, and ``current`` ones on the current side when drifted."""

    name: str
    reference: np.ndarray
    current: np.ndarray | None = None
    what: str = ""

    @property
    def levels(self) -> list[str]:
        return [f"v{i:02d}" for i in range(len(self.reference))]


def _zipf(levels: int, power: float = 1.0) -> np.ndarray:
    weights = 1 / np.arange(1, levels + 1) ** power
    return weights / weights.sum()


def _moved(p: np.ndarray, mass: float) -> np.ndarray:
    """``p`` with ``mass`` taken from the most frequent level and spread over the others."""
    q = p.copy()
    q[0] -= mass
    q[1:] += mass * p[1:] / p[1:].sum()
    return q


def _mixture(rng: np.random.Generator, n: int) -> np.ndarray:
    """Bimodal: N(-2, 1) and N(3, 0.5), 60/40."""
    left = rng.random(n) < 0.6
    return np.where(left, rng.normal(-2, 1, n), rng.normal(3, 0.5, n))


def _poisson(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.poisson(4.0, n).astype(np.int64)


NUMERIC: tuple[Numeric, ...] = (
    Numeric("num_00", lambda r, n: r.normal(0, 1, n)),
    Numeric("num_01", lambda r, n: r.normal(50, 10, n)),
    Numeric("num_02", lambda r, n: r.normal(0, 1, n), lambda x: x + 0.5, "mean shifted by +0.5 std"),
    Numeric("num_03", lambda r, n: r.lognormal(0, 0.75, n)),
    Numeric("num_04", lambda r, n: r.exponential(2.0, n)),
    Numeric("num_05", lambda r, n: r.normal(100, 15, n), lambda x: 100 + (x - 100) * 1.5, "std × 1.5"),
    Numeric("num_06", lambda r, n: r.uniform(0, 10, n)),
    Numeric("num_07", lambda r, n: r.standard_t(5, n)),
    Numeric("num_08", lambda r, n: r.gamma(2.0, 3.0, n)),
    Numeric("num_09", lambda r, n: r.lognormal(1, 0.5, n), lambda x: x * 1.4, "values × 1.4 (lognormal)"),
    Numeric("num_10", lambda r, n: r.beta(2, 5, n)),
    Numeric("num_11", _poisson),
    Numeric("num_12", _mixture),
    Numeric("num_13", lambda r, n: r.exponential(2.0, n), lambda x: x - 1.0, "mean shifted by −0.5 std"),
    Numeric("num_14", lambda r, n: r.normal(-5, 0.1, n)),
    Numeric("num_15", lambda r, n: r.uniform(-1, 1, n)),
    Numeric("num_16", lambda r, n: r.normal(1e6, 2e5, n)),
    Numeric("num_17", lambda r, n: r.uniform(0, 10, n), lambda x: 5 + (x - 5) * 0.6, "range × 0.6 around the middle"),
    Numeric("num_18", lambda r, n: r.laplace(0, 2, n)),
    Numeric("num_19", lambda r, n: r.weibull(1.5, n)),
)
CATEGORICAL: tuple[Categorical, ...] = (
    Categorical("cat_0", _zipf(3, 0.5)),
    Categorical("cat_1", _zipf(6)),
    Categorical("cat_2", _zipf(12), _moved(_zipf(12), 0.25), "25% of the rows moved off the top level"),
    Categorical("cat_3", _zipf(24)),
    Categorical("cat_4", _zipf(40, 0.8)),
)
NUMERIC_COLUMNS = [c.name for c in NUMERIC]
CATEGORICAL_COLUMNS = [c.name for c in CATEGORICAL]
COLUMNS = NUMERIC_COLUMNS + CATEGORICAL_COLUMNS
DRIFTED = frozenset([c.name for c in NUMERIC if c.drift] + [c.name for c in CATEGORICAL if c.current is not None])


def describe_drift() -> str:
    """``num_02 (mean shifted by +0.5 std), ...``."""
    return ", ".join(f"{c.name} ({c.what})" for c in (*NUMERIC, *CATEGORICAL) if c.what)


# generation ----------------------------------------------------------------------------------

SCHEMA = pa.schema(
    [(c.name, pa.int64() if c.draw is _poisson else pa.float64()) for c in NUMERIC]
    + [(c.name, pa.string()) for c in CATEGORICAL]
)


def chunk(side: str, index: int, rows: int) -> pa.Table:
    """Rows ``[index * CHUNK_ROWS, ... + rows)`` of ``side`` ('reference' or 'current')."""
    current = side == "current"
    rng = np.random.default_rng(np.random.SeedSequence([SEED, int(current), index]))
    arrays: list[pa.Array] = []
    for column in NUMERIC:
        values = column.draw(rng, rows)
        arrays.append(pa.array(column.drift(values) if current and column.drift else values))
    for column in CATEGORICAL:
        p = column.current if current and column.current is not None else column.reference
        codes = np.searchsorted(np.cumsum(p), rng.random(rows), side="right").clip(0, len(p) - 1)
        arrays.append(pa.array(column.levels).take(pa.array(codes.astype(np.int32))))
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def path_for(side: str, rows: int) -> Path:
    """``bench/.work/monitoring/<side>-<rows>.parquet``."""
    return FOLDER / f"{side}-{rows}.parquet"


def _current(path: Path, rows: int) -> bool:
    try:
        meta = pq.ParquetFile(path).schema_arrow.metadata or {}
    except (OSError, pa.ArrowInvalid):
        return False
    return meta.get(b"bench-data") == DATA_VERSION.encode() and meta.get(b"bench-rows") == str(rows).encode()


def ensure_files(rows: int) -> tuple[Path, Path, float | None]:
    """The reference and current files of ``rows`` rows each, written unless present and
    current (written to a temporary name, then renamed); seconds spent writing, None if reused."""
    FOLDER.mkdir(parents=True, exist_ok=True)
    paths = (path_for("reference", rows), path_for("current", rows))
    if all(_current(p, rows) for p in paths):
        return *paths, None
    start = time.perf_counter()
    schema = SCHEMA.with_metadata({"bench-data": DATA_VERSION, "bench-rows": str(rows)})
    for side, path in zip(("reference", "current"), paths, strict=True):
        partial = path.with_suffix(".partial")
        with pq.ParquetWriter(partial, schema) as writer:
            for index, offset in enumerate(range(0, rows, CHUNK_ROWS)):
                table = chunk(side, index, min(CHUNK_ROWS, rows - offset))
                writer.write_table(table.replace_schema_metadata(schema.metadata), row_group_size=CHUNK_ROWS)
        partial.replace(path)
    return *paths, time.perf_counter() - start
