"""SQLAlchemy tables of the monitoring capability: results as time series, reference
profiles, business metric definitions, alert rules, their state and deliveries, and
the platform events other capabilities consume."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from conveyor.core.db.base import ID, SHA, metadata_obj

monitor_runs = Table(
    "monitor_runs",
    metadata_obj,
    Column("id", ID, primary_key=True),
    Column("model", String(256), nullable=False),
    Column("version", Integer),
    Column("window_start", BigInteger, nullable=False),
    Column("window_end", BigInteger, nullable=False),
    Column("summary", JSON, nullable=False),
    # Per-column reference and current distributions, for reports (JSON artifact).
    Column("detail_sha256", SHA),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_monitor_runs_model_window_end", "model", "window_end"),
)

monitor_results = Table(
    "monitor_results",
    metadata_obj,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("run_id", ID, nullable=False),
    Column("model", String(256), nullable=False),
    Column("version", Integer),
    Column("check", String(64), nullable=False),
    Column("column", String(256), nullable=False),
    Column("statistic", String(64), nullable=False),
    Column("value", Float),
    Column("threshold", Float),
    Column("status", String(16), nullable=False),
    Column("window_start", BigInteger, nullable=False),
    Column("window_end", BigInteger, nullable=False),
    Column("rows", BigInteger),
    Column("created_at", BigInteger, nullable=False),
    # history(): one series of one model, in window order.
    Index("ix_monitor_results_series", "model", "check", "statistic", "column", "window_end"),
    Index("ix_monitor_results_run_id", "run_id"),
)

monitor_references = Table(
    "monitor_references",
    metadata_obj,
    Column("model", String(256), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("sha256", SHA, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("source", String(1024), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

business_metrics = Table(
    "business_metrics",
    metadata_obj,
    Column("name", String(128), primary_key=True),
    Column("model", String(256), nullable=False),
    Column("sql", Text, nullable=False),
    Column("description", String(1024), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

alert_rules = Table(
    "alert_rules",
    metadata_obj,
    Column("name", String(128), primary_key=True),
    Column("spec", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

alert_states = Table(
    "alert_states",
    metadata_obj,
    Column("rule", String(128), primary_key=True),
    Column("model", String(256), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("value", Float),
    Column("since", BigInteger, nullable=False),
    Column("last_fired_at", BigInteger),
    Column("evaluated_at", BigInteger, nullable=False),
)

alert_deliveries = Table(
    "alert_deliveries",
    metadata_obj,
    Column("id", ID, primary_key=True),
    Column("rule", String(128), nullable=False),
    Column("model", String(256), nullable=False),
    Column("channel", String(512), nullable=False),
    Column("event", String(16), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("response_status", Integer),
    Column("last_error", String(1024)),
    Column("created_at", BigInteger, nullable=False),
    Column("delivered_at", BigInteger),
    Index("ix_alert_deliveries_status", "status"),
    Index("ix_alert_deliveries_rule_model", "rule", "model"),
)

platform_events = Table(
    "platform_events",
    metadata_obj,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("type", String(64), nullable=False),
    Column("subject", String(256), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_platform_events_type_id", "type", "id"),
)
