"""Batch scoring from entity keys: each chunk gets a feature service's values point in time.

The input then holds what the model's training set held before its features were
joined: entity keys and an event timestamp (plus anything else, kept as is). Each chunk
goes through ``FeatureStore.get_historical_features`` before it is scored, so a row is
scored on the feature values as of its own timestamp, exactly as the training rows were.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from conveyor.errors import NotFound, ValidationError
from conveyor.features import FeatureStore

if TYPE_CHECKING:
    from conveyor.core.workspace import Workspace
    from conveyor.registry import ModelVersion


@dataclass(frozen=True)
class FeatureEnrichment:
    """The feature service each chunk is joined with, and how another process opens the store.

    ``settings`` are the workspace's settings as plain values, with DuckDB limited to one
    thread: a scoring process on Ray runs on one CPU.
    """

    service: str
    join_keys: tuple[str, ...]
    timestamp_column: str
    settings: dict[str, Any]

    def open(self, workspace: Workspace | None = None) -> FeatureJoin:
        """A connection that joins chunks: on ``workspace``, or on one opened from ``settings``."""
        if workspace is None:
            from conveyor.core.config import Settings
            from conveyor.core.workspace import Workspace

            workspace = Workspace(Settings.model_validate(self.settings))
        return FeatureJoin(self, FeatureStore(workspace=workspace))


class FeatureJoin:
    """Joins chunks with a feature service through one open feature store."""

    def __init__(self, enrichment: FeatureEnrichment, store: FeatureStore) -> None:
        self.enrichment = enrichment
        self.store = store

    def enrich(self, chunk: pd.DataFrame) -> pd.DataFrame:
        """``chunk`` followed by the service's features as of each row's timestamp."""
        entity = chunk[[*self.enrichment.join_keys, self.enrichment.timestamp_column]]
        job = self.store.get_historical_features(entity, self.enrichment.service, self.enrichment.timestamp_column)
        fetched = job.to_arrow().select(job.outputs).to_pandas().set_axis(chunk.index)
        return pd.concat([chunk, fetched], axis=1)

    def close(self) -> None:
        """Close the store's DuckDB connection."""
        self.store.close()


def plan_enrichment(
    workspace: Workspace, version: ModelVersion, inputs: list[str], schema: pa.Schema, service: str | None,
    timestamp_column: str,
) -> FeatureEnrichment | None:
    """The feature join a scoring needs, checked against the input's columns before any row is read.

    ``service`` None means: the service ``version`` was trained with, when the input lacks
    some of the model's columns (``inputs``); no join when it has them all or the version
    names no service.

    Raises:
        NotFound: the service is not applied.
        ValidationError: the input lacks a join key or the timestamp column, or already has
            a column the service provides.
    """
    option = "--features-service"
    if service is None:
        if version.feature_service is None or all(name in schema.names for name in inputs):
            return None
        service = version.feature_service
        option = f"--features-service (default: {service}, which {version.model} version {version.version} was trained with)"
    with FeatureStore(workspace=workspace) as store:
        try:
            definition = store.get_feature_service(service)
        except NotFound as exc:
            raise NotFound(f"{option}: {exc.message}", field="features_service") from exc
        keys: list[str] = []
        for selection in definition.features:
            for entity in store.get_feature_view(selection.view).entity_names:
                keys += [key for key in store.get_entity(entity).join_keys if key not in keys]
    for key in keys:
        if key not in schema.names:
            raise ValidationError(f"{option}: the input has no column {key!r}, a join key of feature service "
                                  f"{service!r} (columns: {', '.join(schema.names)})", field="features_service")
    if timestamp_column not in schema.names:
        raise ValidationError(f"--timestamp-column: the input has no column {timestamp_column!r} "
                              f"(columns: {', '.join(schema.names)})", field="timestamp_column")
    for ref in definition.refs:
        feature = ref.split(":", 1)[1]
        if feature in schema.names:
            raise ValidationError(f"{option}: the input already has a column {feature!r}, which feature service "
                                  f"{service!r} provides: drop it from the input", field="features_service")
    settings = workspace.settings.model_dump()
    settings["features"]["offline"]["threads"] = 1
    return FeatureEnrichment(service, tuple(keys), timestamp_column, settings)
