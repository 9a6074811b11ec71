"""Files, tables, figures and datasets attached to runs."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import select

from conveyor.core.db.base import now_ms
from conveyor.errors import NotFound, ValidationError
from conveyor.governance.permissions import Action, requires
from conveyor.tracking.datasets import DatasetDescription, describe
from conveyor.tracking.schemas import ArtifactInfo, DatasetInput
from conveyor.tracking.tables import artifacts, datasets, run_inputs

if TYPE_CHECKING:
    from conveyor.core.artifacts import ArtifactStore, BlobReader
    from conveyor.core.db import MetadataStore


def _artifact_path(path: str) -> str:
    clean = PurePosixPath(path)
    if clean.is_absolute() or ".." in clean.parts or not str(clean).strip() or str(clean) == ".":
        raise ValidationError(f"artifact path {path!r} must be relative and stay inside the run", field="artifact_path")
    return str(clean)


def artifact_row(run_id: str, path: str, sha: str, size: int, kind: str) -> dict[str, Any]:
    """The stored record of one artifact of a run."""
    return {"run_id": run_id, "path": path, "sha256": sha, "size": size, "kind": kind, "created_at": now_ms()}


class ArtifactWriting:
    """Files, tables, figures and datasets built on four primitives, so a remote client
    (which sends bytes and descriptions over HTTP) shares this logic with the local store."""

    if TYPE_CHECKING:  # provided by the tracking service, local or remote

        def get_run_info(self, run_id: str) -> Any: ...
        def log_bytes(self, run_id: str, data: bytes, artifact_path: str, kind: str = "file") -> ArtifactInfo: ...
        def log_file(self, run_id: str, local_path: str | Path, artifact_path: str, kind: str = "file") -> ArtifactInfo: ...
        def record_dataset(self, run_id: str, name: str, description: DatasetDescription, context: str = "train") -> DatasetInput: ...
        def get_artifact(self, run_id: str, artifact_path: str) -> ArtifactInfo: ...

        artifacts: BlobReader

    def log_artifact(self, run_id: str, local_path: str | Path, artifact_path: str | None = None) -> list[ArtifactInfo]:
        """Store a file, or every file under a folder, under ``artifact_path`` (default: its name)."""
        self.get_run_info(run_id)
        source = Path(local_path)
        if not source.exists():
            raise ValidationError(f"artifact {str(source)!r} does not exist", field="local_path")
        base = _artifact_path(artifact_path or source.name)
        files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
        return [
            self.log_file(run_id, file, f"{base}/{file.relative_to(source).as_posix()}" if source.is_dir() else base)
            for file in files
        ]

    def log_table(self, run_id: str, frame: pd.DataFrame, artifact_path: str) -> ArtifactInfo:
        """Store a DataFrame as Parquet (the path gets ``.parquet`` if it has no suffix)."""
        if not isinstance(frame, pd.DataFrame):
            raise ValidationError(f"log_table takes a DataFrame, got {type(frame).__name__}", field="data")
        path = artifact_path if PurePosixPath(artifact_path).suffix else f"{artifact_path}.parquet"
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return self.log_bytes(run_id, buffer.getvalue(), path, "table")

    def log_figure(self, run_id: str, figure: Any, artifact_path: str) -> ArtifactInfo:
        """Store a matplotlib figure as PNG (or SVG/PDF by the path's suffix)."""
        if not hasattr(figure, "savefig"):
            raise ValidationError(f"log_figure takes a matplotlib figure, got {type(figure).__name__}", field="figure")
        suffix = PurePosixPath(artifact_path).suffix.lstrip(".").lower()
        path = artifact_path if suffix in {"png", "svg", "pdf"} else f"{artifact_path}.png"
        buffer = io.BytesIO()
        figure.savefig(buffer, format=PurePosixPath(path).suffix.lstrip("."), bbox_inches="tight")
        return self.log_bytes(run_id, buffer.getvalue(), path, "figure")

    def log_dataset(
        self, run_id: str, data: Any, name: str, context: str = "train", source: str | None = None
    ) -> DatasetInput:
        """Record a dataset the run consumed: content hash, schema, rows and source."""
        self.get_run_info(run_id)
        if not name:
            raise ValidationError("log_dataset needs a name", field="name")
        return self.record_dataset(run_id, name, describe(data, source), context)

    def read_artifact(self, run_id: str, artifact_path: str) -> bytes:
        """An artifact's bytes, verified against its checksum (``IntegrityError`` if corrupted)."""
        return self.artifacts.get_bytes(self.get_artifact(run_id, artifact_path).sha256)

    def download_artifact(self, run_id: str, artifact_path: str, destination: str | Path) -> Path:
        """Write a verified artifact to a local file."""
        return self.artifacts.download(self.get_artifact(run_id, artifact_path).sha256, destination)


class ArtifactLog(ArtifactWriting):
    """The stored side of ``TrackingService``'s artifacts."""

    store: MetadataStore
    artifacts: ArtifactStore
    if TYPE_CHECKING:  # provided by TrackingService

        def get_run_info(self, run_id: str) -> Any: ...

    # The shared methods, guarded here where the actor's roles are known (a remote client's
    # are checked by its server): refused before they read a file or render a figure.
    log_artifact = requires(Action.EXPERIMENTS_WRITE)(ArtifactWriting.log_artifact)
    log_table = requires(Action.EXPERIMENTS_WRITE)(ArtifactWriting.log_table)
    log_figure = requires(Action.EXPERIMENTS_WRITE)(ArtifactWriting.log_figure)
    log_dataset = requires(Action.EXPERIMENTS_WRITE)(ArtifactWriting.log_dataset)
    read_artifact = requires(Action.EXPERIMENTS_READ)(ArtifactWriting.read_artifact)
    download_artifact = requires(Action.EXPERIMENTS_READ)(ArtifactWriting.download_artifact)

    def _record(self, run_id: str, path: str, sha: str, size: int, kind: str) -> ArtifactInfo:
        row = artifact_row(run_id, path, sha, size, kind)
        upsert = self.store.dialect.insert(artifacts).values(**row)
        with self.store.write() as conn:
            conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=[artifacts.c.run_id, artifacts.c.path],
                    set_={"sha256": sha, "size": size, "kind": kind, "created_at": row["created_at"]},
                )
            )
        return ArtifactInfo(path=path, sha256=sha, size=size, kind=kind)

    @requires(Action.EXPERIMENTS_WRITE)
    def log_bytes(self, run_id: str, data: bytes, artifact_path: str, kind: str = "file") -> ArtifactInfo:
        """Store bytes as the run's artifact at ``artifact_path``."""
        sha, size = self.artifacts.put_bytes(data)
        return self._record(run_id, _artifact_path(artifact_path), sha, size, kind)

    @requires(Action.EXPERIMENTS_WRITE)
    def log_file(self, run_id: str, local_path: str | Path, artifact_path: str, kind: str = "file") -> ArtifactInfo:
        """Store one local file as the run's artifact at ``artifact_path``."""
        path = _artifact_path(artifact_path)
        sha, size = self.artifacts.put_file(local_path)
        return self._record(run_id, path, sha, size, kind)

    @requires(Action.EXPERIMENTS_WRITE)
    def link_artifact(self, run_id: str, artifact_path: str, sha256: str, kind: str = "file") -> ArtifactInfo:
        """Record a blob already in the artifact store as the run's artifact, without copying it:
        how a cached pipeline step gives a new run the output an earlier run stored."""
        if not self.artifacts.exists(sha256):
            raise NotFound(f"artifact store has no blob {sha256}", field="sha256")
        return self._record(run_id, _artifact_path(artifact_path), sha256, self.artifacts.size(sha256), kind)

    @requires(Action.EXPERIMENTS_WRITE)
    def record_dataset(self, run_id: str, name: str, description: DatasetDescription, context: str = "train") -> DatasetInput:
        """Record a described dataset as an input of the run (``log_dataset`` describes it)."""
        found = description
        dataset_id = hashlib.sha256(f"{name}\0{found.digest}\0{found.source}".encode()).hexdigest()[:32]
        row = {
            "id": dataset_id, "name": name, "digest": found.digest, "source": found.source,
            "schema": found.data_schema, "rows": found.rows, "created_at": now_ms(),
        }
        with self.store.write() as conn:
            conn.execute(self.store.dialect.insert(datasets).values(**row).on_conflict_do_nothing())
            conn.execute(
                self.store.dialect.insert(run_inputs)
                .values(run_id=run_id, dataset_id=dataset_id, context=context)
                .on_conflict_do_nothing()
            )
        return DatasetInput(
            id=dataset_id, name=name, digest=found.digest, source=found.source,
            data_schema=found.data_schema, rows=found.rows, context=context,
        )

    @requires(Action.EXPERIMENTS_READ)
    def get_artifact(self, run_id: str, artifact_path: str) -> ArtifactInfo:
        """The record of one artifact; ``NotFound`` if the run has none at that path."""
        with self.store.read() as conn:
            row = conn.execute(
                select(artifacts.c.path, artifacts.c.sha256, artifacts.c.size, artifacts.c.kind).where(
                    artifacts.c.run_id == run_id, artifacts.c.path == artifact_path
                )
            ).first()
        if row is None:
            raise NotFound(f"run {run_id} has no artifact '{artifact_path}'", field="artifact_path")
        return ArtifactInfo(**row._mapping)

    @requires(Action.EXPERIMENTS_READ)
    def blob_chunks(self, sha256: str) -> Iterator[bytes]:
        """A stored blob's bytes, chunk by chunk, verified as they are read (what model loading reads)."""
        if not self.artifacts.exists(sha256):
            raise NotFound(f"artifact store has no blob {sha256}", field="sha256")
        return self.artifacts.iter_chunks(sha256)
