"""Splitting a profiling pass across workers (local processes or Ray).

The input is cut into parts (files, or row-group ranges of one Parquet file, or row
slices of an in-memory table), each part is profiled under the same plan by a worker,
and the partial profiles are merged: sketches add up, so the result equals one pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from conveyor.errors import ValidationError
from conveyor.monitoring.profiling import Plan, empty_profile, profile_relation
from conveyor.monitoring.sketch import Profile
from conveyor.monitoring.sources import expand_paths, relation
from conveyor.pipelines.executors import Executor, ExecutorSettings, open_executor


@dataclass(frozen=True)
class Part:
    """Files, or some row groups of one Parquet file, or an in-memory slice."""

    paths: tuple[str, ...] = ()
    row_groups: tuple[int, ...] = ()
    table: pa.Table | None = None


def split(data: Any, parts: int) -> list[Part]:
    """Cut ``data`` into about ``parts`` pieces of similar size."""
    if isinstance(data, pd.DataFrame):
        data = pa.Table.from_pandas(data, preserve_index=False)
    if isinstance(data, pa.Table):
        step = max(1, -(-data.num_rows // parts))
        return [Part(table=data.slice(start, step)) for start in range(0, max(data.num_rows, 1), step)]
    paths = expand_paths(data, "data")
    if len(paths) >= parts or not paths[0].endswith((".parquet", ".pq")):
        return [Part(paths=tuple(paths[i::parts])) for i in range(min(parts, len(paths)))]
    groups = pq.ParquetFile(paths[0]).num_row_groups
    if len(paths) > 1 or groups < 2:
        return [Part(paths=tuple(paths))]
    return [Part(paths=(paths[0],), row_groups=tuple(range(i, groups, parts))) for i in range(min(parts, groups))]


def profile_part(plan: Plan, part: Part) -> Profile:
    """Profile one part under ``plan`` (runs in a worker)."""
    con = duckdb.connect()
    try:
        if part.row_groups:
            source: Any = pq.ParquetFile(part.paths[0]).read_row_groups(list(part.row_groups))
        elif part.table is not None:
            source = part.table
        else:
            source = part.paths[0] if len(part.paths) == 1 else list(part.paths)
        rel = relation(con, source, "data") if not isinstance(source, list) else con.read_parquet(source, union_by_name=True)
        return profile_relation(rel, plan)
    finally:
        con.close()


def executor_for(executor: Any) -> tuple[Executor, bool]:
    """An executor for ``"ray"``, ``"local"`` or an ``Executor``; True when opened here."""
    if isinstance(executor, str):
        if executor not in ("ray", "local"):
            raise ValidationError(f"executor must be 'local' or 'ray', got '{executor}'", field="executor")
        return open_executor(ExecutorSettings(type=executor)), True
    return executor, False


def profile_parallel(data: Any, plan: Plan, executor: Any) -> Profile:
    """Profile ``data`` under ``plan`` with its parts spread over ``executor``'s workers."""
    runner, opened = executor_for(executor)
    try:
        partials = runner.map(profile_part, split(data, runner.workers), shared=plan)
    finally:
        if opened:
            runner.close()
    total = empty_profile(plan)
    for partial in partials:
        total.merge(partial)
    return total
