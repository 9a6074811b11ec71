"""SQLAlchemy tables of the model registry."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from conveyor.core.db.base import ID, SHA, metadata_obj

registered_models = Table(
    "registered_models",
    metadata_obj,
    Column("id", ID, primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("description", Text),
    Column("owner_team", String(256)),
    Column("task_type", String(32)),
    Column("risk_tier", String(16), nullable=False),
    Column("intended_use", Text),
    Column("limitations", Text),
    Column("tags", JSON, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata_obj,
    Column("id", ID, primary_key=True),
    Column("model_id", ID, ForeignKey("registered_models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("source", Text, nullable=False),
    Column("run_id", ID, ForeignKey("runs.id")),
    Column("manifest_sha256", SHA, nullable=False),
    Column("profile_sha256", SHA),
    Column("flavor", String(32), nullable=False),
    Column("unsafe", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("description", Text),
    Column("git_commit", String(64)),
    Column("datasets", JSON, nullable=False),
    Column("feature_service", String(256)),
    Column("created_by", String(128), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("status_changed_at", BigInteger, nullable=False),
    UniqueConstraint("model_id", "version"),
)

model_aliases = Table(
    "model_aliases",
    metadata_obj,
    Column("model_id", ID, ForeignKey("registered_models.id"), primary_key=True),
    Column("alias", String(128), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("set_by", String(128), nullable=False),
    Column("set_at", BigInteger, nullable=False),
)

alias_history = Table(
    "alias_history",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", ID, ForeignKey("registered_models.id"), nullable=False),
    Column("alias", String(128), nullable=False),
    Column("action", String(16), nullable=False),
    Column("version", Integer),
    Column("previous_version", Integer),
    Column("actor", String(128), nullable=False),
    Column("at", BigInteger, nullable=False),
    Index("ix_alias_history_model_alias", "model_id", "alias", "id"),
)

approvals = Table(
    "approvals",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("version_id", ID, ForeignKey("model_versions.id"), nullable=False, index=True),
    Column("requested_by", String(128), nullable=False),
    Column("requested_at", BigInteger, nullable=False),
    Column("comment", Text),
    Column("decision", String(16)),
    Column("decided_by", String(128)),
    Column("decided_at", BigInteger),
    Column("reason", Text),
)

validation_reports = Table(
    "validation_reports",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("version_id", ID, ForeignKey("model_versions.id"), nullable=False, index=True),
    Column("passed", Boolean, nullable=False),
    Column("report_sha256", SHA, nullable=False),
    Column("html_sha256", SHA, nullable=False),
    Column("summary", JSON, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
