"""Batch scoring: a Parquet file of any size through a model in bounded memory.

The input is read in Arrow record batches of ``chunk_rows``, each checked against the
signature, scored and appended to the output file, so memory holds one chunk whatever
the input's size. The output keeps the input's other columns (keys, timestamps) and
adds the prediction, one probability column per class for classifiers, and the
model version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from conveyor.errors import ValidationError
from conveyor.serving.endpoint import ModelReference, output_classes, predict_rows

if TYPE_CHECKING:
    from conveyor.registry.packaging import Predictor
    from conveyor.registry.service import RegistryService


@dataclass(frozen=True)
class ScoringSummary:
    """What a batch scoring wrote."""

    rows: int
    chunks: int
    model: str
    version: int
    output: Path


def _scored(predictor: Predictor, chunk: pd.DataFrame, inputs: list[str], classes: list | None, version: int) -> pa.Table:
    kept = chunk.drop(columns=[c for c in inputs if c in chunk.columns])
    kept["prediction"], proba = predict_rows(predictor, chunk, classes)
    for position, label in enumerate(classes if proba is not None else []):
        kept[f"probability_{label}"] = proba[:, position]
    kept["model_version"] = np.full(len(chunk), version, dtype=np.int64)
    return pa.Table.from_pandas(kept, preserve_index=False)


def score_file(
    registry: RegistryService, model: str, source: str | Path, destination: str | Path, chunk_rows: int = 100_000,
    progress: Callable[[int, int], None] | None = None,
) -> ScoringSummary:
    """Score every row of the Parquet file ``source`` into ``destination``.

    Raises:
        ValidationError: the input is not a readable Parquet file, ``chunk_rows`` is not
            positive, or a chunk does not fit the model's signature (the row offset is named).
    """
    if chunk_rows < 1:
        raise ValidationError("--chunk-rows must be at least 1", field="chunk_rows")
    reference = ModelReference.parse(model)
    predictor = registry.load_model(reference.uri)
    version = int(predictor.version.version)
    signature = predictor.signature
    inputs = [spec.name for spec in signature.inputs] if signature else []
    classes = output_classes(predictor)
    try:
        reader = pq.ParquetFile(source)
    except (OSError, pa.ArrowInvalid) as exc:
        raise ValidationError(f"--input {source}: not a readable Parquet file ({exc})", field="input") from exc
    total = reader.metadata.num_rows
    done = chunks = 0
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    writer: pq.ParquetWriter | None = None
    try:
        for batch in reader.iter_batches(batch_size=chunk_rows):
            chunk = batch.to_pandas()
            try:
                table = _scored(predictor, chunk, inputs, classes, version)
            except ValidationError as exc:
                raise ValidationError(f"rows {done}-{done + len(chunk) - 1}: {exc.message}", field=exc.field) from exc
            if writer is None:
                writer = pq.ParquetWriter(partial, table.schema)
            writer.write_table(table)
            done, chunks = done + len(chunk), chunks + 1
            if progress:
                progress(done, total)
    except BaseException:
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
        raise
    if writer is not None:
        writer.close()
    if writer is None:
        raise ValidationError(f"--input {source}: the file has no rows", field="input")
    partial.replace(destination)
    return ScoringSummary(done, chunks, reference.name, version, destination)
