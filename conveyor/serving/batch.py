"""Batch scoring: a Parquet file of any size through a model in bounded memory.

The input is read in Arrow record batches of ``chunk_rows``; each is (optionally) joined
with a feature service's values point in time, checked against the signature, scored
and appended to ``OUTPUT.partial``, renamed to the output once every row is written (a
failure removes it). Memory holds one chunk in this process (``executor="local"``, the
fastest on one machine), or a bounded number of partitions scored in parallel by Ray
tasks (``executor="ray"``, see ``batch_ray``); rows are written in input order either way.
The output keeps the input's other columns (keys, timestamps) and adds the prediction,
one probability column per class for classifiers, and the model version.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from conveyor.errors import ValidationError
from conveyor.serving.batch_features import plan_enrichment
from conveyor.serving.batch_scorer import (
    ChunkScorer,
    ModelSource,
    Scored,
    ScoringJob,
    open_input,
)
from conveyor.serving.endpoint import ModelReference

if TYPE_CHECKING:
    from conveyor.core.workspace import Workspace

EXECUTORS = ("local", "ray")
DEFAULT_RAY_WORKERS = 2

@dataclass(frozen=True)
class ScoringSummary:
    """What a batch scoring wrote, and where it ran."""

    rows: int
    chunks: int
    model: str
    version: int
    output: Path
    executor: str = "local"
    workers: int = 1


def score_file(
    workspace: Workspace, model: str, source: str | Path, destination: str | Path, chunk_rows: int = 100_000,
    progress: Callable[[int, int], None] | None = None, *, executor: str = "local", workers: int | None = None,
    features_service: str | None = None, timestamp_column: str = "event_timestamp",
) -> ScoringSummary:
    """Score every row of the Parquet file ``source`` into ``destination``, in input order.

    Args:
        workspace: where the model (and the feature service) are registered.
        model: ``NAME@ALIAS``, ``NAME/VERSION`` or ``NAME`` (its champion).
        chunk_rows: rows scored at once; on Ray, also the size of a partition.
        progress: called with (rows written, total rows) after each write.
        executor: ``local`` (this process) or ``ray`` (``workers`` tasks at once, default 2).
        features_service: join each chunk with this service's features as of the rows'
            ``timestamp_column``; default: the service the version was trained with, when the
            input lacks some of the model's columns.

    Raises:
        ValidationError: an option is out of range, the input is not a readable Parquet file
            or has no rows, lacks a join key or the timestamp column, or a chunk does not fit
            the model's signature (the rows are named).
        NotFound: the model, version, alias or feature service does not exist.
    """
    workers = _checked_workers(chunk_rows, executor, workers)
    reference = ModelReference.parse(model)
    version, _ = workspace.registry.resolve(reference.uri)
    reader = _checked_input(source)
    model_source = ModelSource.fetch(workspace.registry, version)
    features = plan_enrichment(workspace, version, model_source.inputs, reader.schema_arrow, features_service,
                               timestamp_column)
    job = ScoringJob(uuid.uuid4().hex, model_source, features)
    if executor == "ray":
        from conveyor.serving.batch_ray import plan_partitions, score_on_ray

        scored = score_on_ray(job, str(source), plan_partitions(reader.metadata, chunk_rows), chunk_rows, workers)
    else:
        scored = _score_here(job, reader, chunk_rows, workspace)
    rows, chunks = _write(scored, Path(destination), reader.metadata.num_rows, progress)
    return ScoringSummary(rows, chunks, reference.name, model_source.version, Path(destination), executor, workers)


def _checked_workers(chunk_rows: int, executor: str, workers: int | None) -> int:
    """The worker count the options give, after checking them."""
    if chunk_rows < 1:
        raise ValidationError("--chunk-rows must be at least 1", field="chunk_rows")
    if executor not in EXECUTORS:
        raise ValidationError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}", field="executor")
    if executor == "local":
        if workers is not None:
            raise ValidationError("--workers applies to --executor ray: local scoring runs in this process",
                                  field="workers")
        return 1
    if workers is not None and workers < 1:
        raise ValidationError("--workers must be at least 1", field="workers")
    return workers or DEFAULT_RAY_WORKERS


def _checked_input(source: str | Path) -> pq.ParquetFile:
    try:
        reader = open_input(source)
    except (OSError, pa.ArrowInvalid) as exc:
        raise ValidationError(f"--input {source}: not a readable Parquet file ({exc})", field="input") from exc
    if reader.metadata.num_rows == 0:
        raise ValidationError(f"--input {source}: the file has no rows", field="input")
    return reader


def _score_here(job: ScoringJob, reader: pq.ParquetFile, chunk_rows: int, workspace: Workspace) -> Scored:
    """Each chunk's scored rows (and a chunk count of 1), scored in this process."""
    scorer = ChunkScorer(job, workspace)
    try:
        first_row = 0
        for batch in reader.iter_batches(batch_size=chunk_rows):
            yield scorer.score(batch, first_row), 1
            first_row += batch.num_rows
    finally:
        scorer.close()


def _write(scored: Scored, destination: Path, total: int, progress: Callable[[int, int], None] | None) -> tuple[int, int]:
    """Append the scored tables to ``destination``.partial and rename it once all are written;
    on any failure remove it and stop ``scored`` (cancelling work still in flight)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    writer: pq.ParquetWriter | None = None
    rows = chunks = 0
    try:
        for table, count in scored:
            if writer is None:
                writer = pq.ParquetWriter(partial, table.schema)
            writer.write_table(table)
            rows, chunks = rows + table.num_rows, chunks + count
            if progress:
                progress(rows, total)
    except BaseException:
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
        raise
    finally:
        scored.close()
    if writer is not None:
        writer.close()
    partial.replace(destination)
    return rows, chunks
