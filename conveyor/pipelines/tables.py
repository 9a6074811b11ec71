"""SQLAlchemy table of the pipeline step cache."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, String, Table

from conveyor.core.db.base import ID, SHA, metadata_obj

pipeline_step_cache = Table(
    "pipeline_step_cache",
    metadata_obj,
    Column("key", SHA, primary_key=True),
    Column("pipeline", String(128), nullable=False),
    Column("step", String(32), nullable=False),
    Column("run_id", ID, nullable=False),
    Column("output_sha256", SHA, nullable=False),
    Column("output_size", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
