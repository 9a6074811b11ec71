"""SQLAlchemy tables of experiment tracking."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from conveyor.core.db.base import ID, metadata_obj

KEY = String(250)

experiments = Table(
    "experiments",
    metadata_obj,
    Column("id", ID, primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("description", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
)

runs = Table(
    "runs",
    metadata_obj,
    Column("id", ID, primary_key=True),
    Column("experiment_id", ID, ForeignKey("experiments.id"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger),
    Column("heartbeat_at", BigInteger, nullable=False),
    Column("parent_id", ID, ForeignKey("runs.id")),
    Column("user", String(128)),
    Column("host", String(256)),
    Column("pid", Integer),
    Column("command", Text),
    Column("git_commit", String(64)),
    Column("git_branch", String(256)),
    Column("git_dirty", Boolean),
    Column("python_version", String(32)),
    Column("seed", BigInteger),
    Column("error", Text),
    Column("deleted", Boolean, nullable=False, default=False),
    Index("ix_runs_experiment_start", "experiment_id", "deleted", "start_time"),
    Index("ix_runs_status", "status"),
    Index("ix_runs_parent", "parent_id"),
)



def _key_values(name: str) -> Table:
    """Params and tags: one string value per run and key, searchable by (experiment, key, value)."""
    return Table(
        name,
        metadata_obj,
        Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        Column("key", KEY, primary_key=True),
        Column("value", Text, nullable=False),
        Column("experiment_id", ID, nullable=False),
        Index(f"ix_{name}_lookup", "experiment_id", "key", "value"),
    )


params = _key_values("params")
tags = _key_values("tags")

# Metric history in chunks: one row per run, key and flush, holding that flush's points
# as packed little-endian arrays. A flush of 500 points writes 5 rows, not 500, and a
# long history reads back as a few arrays instead of a row per point.
metric_chunks = Table(
    "metric_chunks",
    metadata_obj,
    Column("id", Integer().with_variant(BigInteger, "postgresql"), primary_key=True, autoincrement=True),
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("key", KEY, nullable=False),
    Column("count", Integer, nullable=False),
    Column("steps", LargeBinary, nullable=False),
    Column("values", LargeBinary, nullable=False),
    Column("timestamps", LargeBinary, nullable=False),
    Index("ix_metric_chunks_history", "run_id", "key", "id"),
)

latest_metrics = Table(
    "latest_metrics",
    metadata_obj,
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Float),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("experiment_id", ID, nullable=False),
    Index("ix_latest_metrics_lookup", "experiment_id", "key", "value"),
)

artifacts = Table(
    "artifacts",
    metadata_obj,
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

datasets = Table(
    "datasets",
    metadata_obj,
    Column("id", ID, primary_key=True),
    Column("name", String(256), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("source", Text, nullable=False),
    Column("schema", Text, nullable=False),
    Column("rows", BigInteger),
    Column("created_at", BigInteger, nullable=False),
)

run_inputs = Table(
    "run_inputs",
    metadata_obj,
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("dataset_id", ID, ForeignKey("datasets.id"), primary_key=True),
    Column("context", String(64), primary_key=True),
)

metric_wal_offsets = Table(
    "metric_wal_offsets",
    metadata_obj,
    Column("segment", String(256), primary_key=True),
    Column("offset", BigInteger, nullable=False),
)
