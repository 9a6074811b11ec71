"""SQLAlchemy tables of governance: the hash-chained audit log."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, String, Table, Text

from conveyor.core.db.base import metadata_obj

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
