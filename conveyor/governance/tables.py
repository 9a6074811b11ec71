"""SQLAlchemy tables of governance: the hash-chained audit log, and who may act (users,
their API tokens, projects and the roles granted in them)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
)

from conveyor.core.db.base import ID, SHA, metadata_obj

audit_log = Table(
    "audit_log",
    metadata_obj,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("entity", String(512), nullable=False, index=True),
    Column("before", Text),
    Column("after", Text),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_head = Table(
    "audit_head",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

users = Table(
    "users",
    metadata_obj,
    Column("name", String(128), primary_key=True),
    Column("display_name", String(256)),
    # Global roles: held in every project.
    Column("roles", JSON, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(128), nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata_obj,
    Column("id", ID, primary_key=True),
    Column("user", String(128), ForeignKey("users.name"), nullable=False, index=True),
    Column("name", String(128), nullable=False, default=""),
    # Only the SHA-256 of a token is kept; its first characters help people tell tokens apart.
    Column("token_hash", SHA, nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger),
    Column("revoked_at", BigInteger),
    Column("last_used_at", BigInteger),
)

projects = Table(
    "projects",
    metadata_obj,
    Column("name", String(128), primary_key=True),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(128), nullable=False),
)

project_grants = Table(
    "project_grants",
    metadata_obj,
    # The primary key keeps a (project, user, role) grant unique.
    Column("project", String(128), ForeignKey("projects.name"), primary_key=True),
    Column("user", String(128), ForeignKey("users.name"), primary_key=True, index=True),
    Column("role", String(32), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(128), nullable=False),
)
