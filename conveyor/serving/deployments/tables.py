"""SQLAlchemy tables of deployments and their revisions."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from conveyor.core.db.base import metadata_obj

deployments = Table(
    "deployments",
    metadata_obj,
    Column("name", String(128), primary_key=True),
    Column("model", String(256), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

deployment_revisions = Table(
    "deployment_revisions",
    metadata_obj,
    Column("name", String(128), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("spec", Text, nullable=False),
    Column("resolved", Text, nullable=False),
    Column("reason", String(512), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("name", "revision"),
)
