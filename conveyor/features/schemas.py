"""What the feature store returns: stored definitions, plans, materialisations, datasets."""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel


class StoredDefinition(BaseModel):
    """One version of a definition as the metadata store holds it."""

    kind: str
    name: str
    version: int
    spec: dict[str, Any]
    digest: str
    deleted: bool
    created_by: str
    created_at: int


class Change(BaseModel):
    """One object ``apply`` would create, update or delete."""

    action: Literal["create", "update", "delete"]
    kind: str
    name: str
    version: int
    details: list[str] = []
    breaking: list[str] = []


class Plan(BaseModel):
    """What ``apply`` would do; ``breaking`` names changes that break a model's feature service."""

    changes: list[Change]
    unchanged: list[str]

    @property
    def breaking(self) -> list[str]:
        """Every break, in the order of the changes."""
        return [message for change in self.changes for message in change.breaking]


class MaterializationStatus(str, Enum):
    """Lifecycle of one materialisation of one view."""

    RUNNING = "running"
    COMMITTED = "committed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class Materialization(BaseModel):
    """One materialisation of one view version into the online store."""

    id: str
    view: str
    view_version: int
    start_us: int | None
    end_us: int
    status: MaterializationStatus
    rows_read: int | None
    rows_written: int | None
    newest_event_us: int | None
    created_by: str
    started_at: int
    finished_at: int | None

    @property
    def freshness_seconds(self) -> float | None:
        """Age of the newest materialised row when the materialisation finished."""
        if self.newest_event_us is None or self.finished_at is None:
            return None
        return max(0.0, self.finished_at / 1e3 - self.newest_event_us / 1e6)


class FeatureStatistics(BaseModel):
    """Distribution of one feature over the rows of one materialisation."""

    materialization_id: str
    feature: str
    stats: dict[str, Any]


class SavedDataset(BaseModel):
    """A training set kept with what made it: content hash, feature service version, entity rows."""

    name: str
    version: int
    digest: str
    entity_digest: str
    rows: int
    uri: str
    entity_uri: str
    feature_service: str | None
    feature_service_version: int | None
    features: list[dict[str, Any]]
    timestamp_column: str
    created_by: str
    created_at: int
