"""The registry's contract: registered models, versions, aliases, approvals."""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, Field

from conveyor.registry.packaging.manifest import Manifest


class VersionStatus(str, enum.Enum):
    """Where a version is in its lifecycle."""

    CANDIDATE = "candidate"
    VALIDATED = "validated"
    APPROVED = "approved"
    REJECTED = "rejected"
    ARCHIVED = "archived"


class RiskTier(str, enum.Enum):
    """How much harm a wrong prediction can do; sets how much review a version needs."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class RegisteredModel(BaseModel):
    """A named model: the versions, aliases and governance facts that belong to it."""

    id: str
    name: str
    description: str | None = None
    owner_team: str | None = None
    task_type: str | None = None
    risk_tier: RiskTier
    intended_use: str | None = None
    limitations: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    created_by: str
    created_at: int
    updated_at: int
    aliases: dict[str, int] = Field(default_factory=dict)
    latest_version: int | None = None


class ModelVersion(BaseModel):
    """One immutable version: its files (by manifest hash), lineage and lifecycle status."""

    model: str
    version: int
    source: str
    run_id: str | None
    manifest_sha256: str
    profile_sha256: str | None = None
    flavor: str
    unsafe: bool
    status: VersionStatus
    description: str | None = None
    git_commit: str | None = None
    datasets: list[str] = Field(default_factory=list)
    feature_service: str | None = None
    created_by: str
    created_at: int
    status_changed_at: int
    aliases: list[str] = Field(default_factory=list)

    @property
    def uri(self) -> str:
        """``models:/NAME/VERSION``."""
        return f"models:/{self.model}/{self.version}"


class AliasChange(BaseModel):
    """One move of an alias, as kept in its history (``id`` orders the moves)."""

    id: int
    alias: str
    action: str
    version: int | None
    previous_version: int | None
    actor: str
    at: int


class Approval(BaseModel):
    """A request for approval and, once decided, its decision."""

    version: int
    requested_by: str
    requested_at: int
    comment: str | None = None
    decision: str | None = None
    decided_by: str | None = None
    decided_at: int | None = None
    reason: str | None = None


class ValidationRecord(BaseModel):
    """A stored validation report of a version (the report itself is an artifact)."""

    version: int
    passed: bool
    report_sha256: str
    html_sha256: str
    summary: dict[str, Any]
    created_by: str
    created_at: int


class LoggedModel(BaseModel):
    """A model stored in a run: its URI, manifest and, if it was registered, the version."""

    uri: str
    manifest: Manifest
    version: ModelVersion | None = None
