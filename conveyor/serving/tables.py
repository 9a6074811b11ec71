"""SQLAlchemy tables of the serving capability."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, String, Table

from conveyor.core.db.base import ID, metadata_obj

prediction_log_files = Table(
    "prediction_log_files",
    metadata_obj,
    Column("path", String(1024), primary_key=True),
    Column("date", String(10), nullable=False),
    Column("model", String(256), nullable=False),
    Column("version", Integer, nullable=False),
    Column("deployment", String(256)),
    Column("rows", BigInteger, nullable=False),
    Column("first_time", BigInteger, nullable=False),
    Column("last_time", BigInteger, nullable=False),
    Column("first_request_id", ID, nullable=False),
    Column("last_request_id", ID, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # Monitoring asks for a model's files of the last hours or days: last_time >= since.
    Index("ix_prediction_log_files_model_last_time", "model", "last_time"),
    # locate(): first_request_id <= id <= last_request_id; ids grow with time, so a recent
    # id is selective on last_request_id and an old one on first_request_id.
    Index("ix_prediction_log_files_first_request_id", "first_request_id"),
    Index("ix_prediction_log_files_last_request_id", "last_request_id"),
)

prediction_feedback = Table(
    "prediction_feedback",
    metadata_obj,
    Column("request_id", ID, primary_key=True),
    Column("row", Integer, primary_key=True, autoincrement=False),
    Column("label", JSON, nullable=False),
    Column("time", BigInteger, nullable=False),
    Index("ix_prediction_feedback_time", "time"),
)
