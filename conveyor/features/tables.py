"""SQLAlchemy tables of the feature store: definition versions, materialisations,
feature statistics and saved training sets."""

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
)

from conveyor.core.db.base import ID, SHA, metadata_obj

feature_definitions = Table(
    "feature_definitions",
    metadata_obj,
    Column("kind", String(32), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("spec", JSON, nullable=False),
    Column("digest", SHA, nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

feature_materializations = Table(
    "feature_materializations",
    metadata_obj,
    Column("id", ID, primary_key=True),
    Column("view", String(128), nullable=False),
    Column("view_version", Integer, nullable=False),
    Column("start_us", BigInteger),
    Column("end_us", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("rows_read", BigInteger),
    Column("rows_written", BigInteger),
    Column("newest_event_us", BigInteger),
    Column("created_by", String(128), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger),
    Index("ix_feature_materializations_view", "view", "view_version", "status"),
)

feature_statistics = Table(
    "feature_statistics",
    metadata_obj,
    Column("materialization_id", ID, ForeignKey("feature_materializations.id"), primary_key=True),
    Column("feature", String(128), primary_key=True),
    Column("stats", JSON, nullable=False),
)

feature_datasets = Table(
    "feature_datasets",
    metadata_obj,
    Column("name", String(256), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("digest", SHA, nullable=False),
    Column("entity_digest", SHA, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("uri", Text, nullable=False),
    Column("entity_uri", Text, nullable=False),
    Column("feature_service", String(128)),
    Column("feature_service_version", Integer),
    Column("features", JSON, nullable=False),
    Column("timestamp_column", String(128), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
