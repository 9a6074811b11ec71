"""Scoring one chunk of a batch input: join its features, check it, predict, shape the output.

A ``ScoringJob`` is everything a process needs to score chunks on its own: where the
model version's verified files are and which feature service to join. It is small and
picklable, so the process that reads the input can score chunks itself or hand the job
to Ray tasks; each process builds one ``ChunkScorer`` from it (loading the model once).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from conveyor.errors import ValidationError
from conveyor.registry.loading import fetch_model
from conveyor.registry.packaging import Manifest, load_folder
from conveyor.serving.endpoint import output_classes, predict_rows

if TYPE_CHECKING:
    from conveyor.core.workspace import Workspace
    from conveyor.registry import ModelVersion
    from conveyor.registry.packaging import Predictor
    from conveyor.registry.service import RegistryService
    from conveyor.serving.batch_features import FeatureEnrichment

Scored = Generator[tuple[pa.Table, int], None, None]
"""Scored tables in input order, each with the number of chunks it was scored in."""


def open_input(source: str | Path) -> pq.ParquetFile:
    """The input file, read without pre-buffering: a pre-buffering reader keeps every row
    group it has read until it is closed, so its memory grows with the file (and on a
    local disk it is slower, too)."""
    return pq.ParquetFile(source, pre_buffer=False)


@dataclass(frozen=True)
class ModelSource:
    """A model version's files, fetched and verified in a local folder, and how to load them.

    Each scoring process loads the model from this folder itself, once, without a
    connection to the metadata store (which ``RegistryService.load_model`` would need).
    """

    name: str
    version: int
    folder: str
    manifest: Manifest
    trusted_types: tuple[str, ...]

    @classmethod
    def fetch(cls, registry: RegistryService, version: ModelVersion) -> ModelSource:
        """Download the version's files into the registry's model cache (once per manifest)."""
        folder, manifest = fetch_model(registry.artifacts, version.manifest_sha256, registry.cache)
        return cls(version.model, int(version.version), str(folder), manifest, tuple(registry.settings.trusted_types))

    @property
    def inputs(self) -> list[str]:
        """The columns the model reads, from its signature (none when it was saved without one)."""
        signature = self.manifest.signature
        return [spec.name for spec in signature.inputs] if signature else []

    def load(self) -> Predictor:
        """The model, after every file is checked against the manifest."""
        return load_folder(Path(self.folder), self.manifest, trusted_types=self.trusted_types)


@dataclass(frozen=True)
class ScoringJob:
    """One ``score_file`` call as its scoring processes see it; ``key`` tells calls apart
    so a process that serves several keeps each call's model to that call."""

    key: str
    model: ModelSource
    features: FeatureEnrichment | None = None


class ChunkScorer:
    """Scores chunks of the input with one loaded model (and feature store connection).

    With a feature service, each chunk first gets the service's values as of its rows'
    timestamps; the output then keeps every input column. Without one, the input's
    model columns are dropped from the output and the rest (keys, timestamps) kept.
    Either way the output adds ``prediction``, ``probability_<class>`` for classifiers
    and ``model_version``.

    Args:
        job: what to score with.
        workspace: the caller's open workspace, for the feature store; other processes
            pass None and open the store from the job's settings.
    """

    def __init__(self, job: ScoringJob, workspace: Workspace | None = None) -> None:
        self.job = job
        self.predictor = job.model.load()
        self.classes = output_classes(self.predictor)
        self.inputs = job.model.inputs
        self.features = job.features.open(workspace) if job.features else None

    def score(self, batch: pa.RecordBatch, first_row: int) -> pa.Table:
        """The output rows of one chunk, whose first row is row ``first_row`` of the input.

        Raises:
            ValidationError: the chunk does not fit the signature or its features cannot be
                joined; the message starts with the chunk's input rows.
        """
        chunk = batch.to_pandas()
        try:
            if self.features is None:
                frame, kept = chunk, chunk.drop(columns=[c for c in self.inputs if c in chunk.columns])
            else:
                frame, kept = self.features.enrich(chunk), chunk
            kept["prediction"], proba = predict_rows(self.predictor, frame, self.classes)
        except ValidationError as exc:
            rows = f"rows {first_row}-{first_row + len(chunk) - 1}"
            raise ValidationError(f"{rows}: {exc.message}", field=exc.field) from exc
        for position, label in enumerate(self.classes if proba is not None else []):
            kept[f"probability_{label}"] = proba[:, position]
        kept["model_version"] = np.full(len(chunk), self.job.model.version, dtype=np.int64)
        return pa.Table.from_pandas(kept, preserve_index=False)

    def close(self) -> None:
        """Release the feature store connection, if any."""
        if self.features is not None:
            self.features.close()
