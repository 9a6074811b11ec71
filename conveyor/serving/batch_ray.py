"""Batch scoring on Ray: partitions of the input scored in parallel, handed back in input order.

The input is cut into partitions of whole Parquet row groups (the smallest part of a
Parquet file a reader can read alone) of about ``chunk_rows`` rows. Each partition is a
Ray task of one CPU that opens the file itself, reads only its row groups and returns
its scored rows; a worker process loads the model (and opens the feature store) once
per scoring job and keeps it for every partition it gets. The caller receives the
results in input order while at most ``2 x workers`` partitions are in flight, so its
memory holds a bounded number of scored partitions whatever the input's size.

``Executor.map`` is not used: it keeps every result until the last item is done.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from conveyor.errors import ValidationError
from conveyor.serving.batch_scorer import ChunkScorer, Scored, ScoringJob, open_input

IN_FLIGHT_PER_WORKER = 2


@dataclass(frozen=True)
class Partition:
    """Consecutive row groups of the input, and the input row their first row is."""

    first_row: int
    rows: int
    row_groups: tuple[int, ...]


def plan_partitions(metadata: pq.FileMetaData, chunk_rows: int) -> list[Partition]:
    """Consecutive row groups packed into partitions of at most ``chunk_rows`` rows; a row
    group larger than that is a partition of its own (scored in chunks by its task), and
    empty row groups join a neighbour."""
    partitions: list[Partition] = []
    first = rows = 0
    groups: list[int] = []
    for index in range(metadata.num_row_groups):
        size = metadata.row_group(index).num_rows
        if rows and rows + size > chunk_rows:
            partitions.append(Partition(first, rows, tuple(groups)))
            first, rows, groups = first + rows, 0, []
        groups.append(index)
        rows += size
    if groups:
        partitions.append(Partition(first, rows, tuple(groups)))
    return partitions


_scorers: dict[str, ChunkScorer] = {}


def _scorer(job: ScoringJob) -> ChunkScorer:
    """In a worker: this job's scorer, built on its first partition; an earlier job's is closed."""
    if job.key not in _scorers:
        for stale in _scorers.values():
            stale.close()
        _scorers.clear()
        _scorers[job.key] = ChunkScorer(job)
    return _scorers[job.key]


def score_partition(job: ScoringJob, source: str, partition: Partition, chunk_rows: int) -> tuple[pa.Table, int]:
    """In a worker: the partition's scored rows and how many chunks they were scored in.

    Native thread pools (BLAS, OpenMP) are held to one thread: the task has one CPU, and
    OpenMP threads competing for a busy CPU are far slower than one thread.
    """
    from threadpoolctl import threadpool_limits

    scorer = _scorer(job)
    tables, row = [], partition.first_row
    with threadpool_limits(limits=1):
        for batch in open_input(source).iter_batches(batch_size=chunk_rows, row_groups=list(partition.row_groups)):
            tables.append(scorer.score(batch, row))
            row += batch.num_rows
    return pa.concat_tables(tables), len(tables)


def score_on_ray(
    job: ScoringJob, source: str, partitions: list[Partition], chunk_rows: int, workers: int,
) -> Scored:
    """Each partition's scored rows and chunk count, in input order, from Ray tasks.

    Joins the Ray this process is connected to, or starts a local one of ``workers`` CPUs
    and shuts it down at the end. Closing the iterator early cancels the tasks in flight.

    Raises:
        ValidationError: ray is not installed, or a partition does not fit the model (the
            task's own error, naming the rows).
    """
    try:
        import ray
    except ImportError as error:
        raise ValidationError("--executor ray needs the ray package: pip install 'conveyor-ml[ray]'",
                              field="executor") from error
    return _in_order(ray, job, source, partitions, chunk_rows, workers)


def _in_order(
    ray: Any, job: ScoringJob, source: str, partitions: list[Partition], chunk_rows: int, workers: int,
) -> Scored:
    """The tasks, submitted while at most ``IN_FLIGHT_PER_WORKER x workers`` are unread, read in order."""
    from conveyor.pipelines.executors import RayExecutor

    with RayExecutor(workers) as executor:
        task = ray.remote(num_cpus=1)(score_partition)
        job_ref = ray.put(job)
        waiting = iter(partitions)
        running: deque[Any] = deque()

        def submit(count: int) -> None:
            for partition in itertools.islice(waiting, count):
                running.append(task.remote(job_ref, source, partition, chunk_rows))

        submit(IN_FLIGHT_PER_WORKER * executor.workers)
        try:
            while running:
                result = executor._result(running.popleft())  # re-raises a task's own exception
                submit(1)
                yield result
        finally:
            for ref in running:
                ray.cancel(ref)
