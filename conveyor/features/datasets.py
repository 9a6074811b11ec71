"""Saved training sets: the rows, the entity rows that asked for them, and the exact
feature service and view versions, so any model's training data can be fetched or rebuilt.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import func, select

from conveyor.core.db.base import now_ms
from conveyor.errors import NotFound
from conveyor.features.offline import RetrievalJob, ViewRead
from conveyor.features.schemas import SavedDataset
from conveyor.features.tables import feature_datasets
from conveyor.governance.permissions import Action, requires
from conveyor.tracking.datasets import describe_frame

if TYPE_CHECKING:
    from conveyor.features.store import FeatureStore
    from conveyor.tracking.run import Run

SOURCE_PREFIX = "conveyor-dataset:"


class DatasetOperations:
    """The saved-dataset half of ``FeatureStore``."""

    @requires(Action.FEATURES_APPLY)
    def save_dataset(self: FeatureStore, job: RetrievalJob, name: str, run: Run | None = None) -> SavedDataset:
        """Keep a training set as a new version of dataset ``name``, and log it as ``run``'s input."""
        frame = job.to_df()
        entity = job.entity if isinstance(job.entity, pd.DataFrame) else job.entity.to_pandas()
        digest, entity_digest = describe_frame(frame).digest, describe_frame(entity).digest
        with tempfile.TemporaryDirectory() as scratch:
            data_path, entity_path = Path(scratch) / f"{name}.parquet", Path(scratch) / "entity.parquet"
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), data_path)
            pq.write_table(pa.Table.from_pandas(entity, preserve_index=False), entity_path)
            uri, _ = self.workspace.artifacts.put_file(data_path)
            entity_uri, _ = self.workspace.artifacts.put_file(entity_path)
            service = job.service
            service_version = self.catalog.get("feature_service", service).version if service else None
            features = [{"view": r.view.name, "version": r.version, "features": list(r.features),
                         "outputs": list(r.outputs)} for r in job.reads]
            with self.workspace.metadata.write() as conn:
                version = (conn.execute(select(func.max(feature_datasets.c.version))
                                        .where(feature_datasets.c.name == name)).scalar() or 0) + 1
                conn.execute(feature_datasets.insert().values(
                    name=name, version=version, digest=digest, entity_digest=entity_digest, rows=len(frame), uri=uri,
                    entity_uri=entity_uri, feature_service=service, feature_service_version=service_version,
                    features=features, timestamp_column=job.timestamp_column,
                    created_by=self.workspace.actor.name, created_at=now_ms(),
                ))
            if run is not None:
                run.log_dataset(frame, name=name, context="train", source=f"{SOURCE_PREFIX}{name}/v{version}")
        return self.get_dataset(name, version)

    @requires(Action.FEATURES_READ)
    def get_dataset(self: FeatureStore, name: str, version: int | None = None) -> SavedDataset:
        """A saved dataset's record (its newest version unless one is given)."""
        query = select(feature_datasets).where(feature_datasets.c.name == name)
        query = query.where(feature_datasets.c.version == version) if version else \
            query.order_by(feature_datasets.c.version.desc()).limit(1)
        with self.workspace.metadata.read() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"no saved dataset {name!r}{f' version {version}' if version else ''}", field="dataset")
        return SavedDataset.model_validate(row._asdict())

    @requires(Action.FEATURES_READ)
    def list_datasets(self: FeatureStore) -> list[SavedDataset]:
        """Every saved dataset version, newest first."""
        with self.workspace.metadata.read() as conn:
            rows = conn.execute(select(feature_datasets).order_by(feature_datasets.c.created_at.desc())).all()
        return [SavedDataset.model_validate(row._asdict()) for row in rows]

    def _read_blob(self: FeatureStore, sha: str) -> pd.DataFrame:
        with tempfile.TemporaryDirectory() as scratch:
            path = self.workspace.artifacts.download(sha, Path(scratch) / "data.parquet")
            return pq.read_table(path).to_pandas()

    @requires(Action.FEATURES_READ)
    def load_dataset(self: FeatureStore, name: str, version: int | None = None) -> pd.DataFrame:
        """The rows of a saved dataset, as saved (checked against the artifact store's checksum)."""
        return self._read_blob(self.get_dataset(name, version).uri)

    @requires(Action.FEATURES_READ)
    def rebuild_dataset(self: FeatureStore, name: str, version: int | None = None) -> tuple[pd.DataFrame, bool]:
        """Recompute a saved dataset from its entity rows and the view versions it used; returns
        the rows and whether their content hash equals the saved one (False: the source data changed)."""
        saved = self.get_dataset(name, version)
        entity = self._read_blob(saved.entity_uri)
        reads = []
        for item in saved.features:
            view = self.get_feature_view(item["view"], item["version"])
            keys = tuple(k for e in view.entity_names for k in self.get_entity(e).join_keys)
            reads.append(ViewRead(view, item["version"], keys, tuple(item["features"]), tuple(item["outputs"])))
        frame = RetrievalJob(self.duckdb, reads, entity, saved.timestamp_column).to_df()
        return frame, describe_frame(frame).digest == saved.digest

