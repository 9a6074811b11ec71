"""SQLAlchemy tables of the automation capability: retraining policies and their state,
jobs with leases, the agents that run them, and watches after a promotion.

Times named ``*_at`` and ``scheduled_for`` are the agent clock's (simulated in tests and
the demo); ``lease_expires_at`` and ``heartbeat_at`` are always real time, because they
guard against dead processes.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from conveyor.core.db.base import ID, metadata_obj

automation_policies = Table(
    "automation_policies",
    metadata_obj,
    Column("name", String(128), primary_key=True),
    Column("model", String(256), nullable=False),
    Column("spec", JSON, nullable=False),
    # Where evaluation stands: last schedule slot per trigger, the champion last seen.
    Column("state", JSON, nullable=False),
    Column("paused", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("updated_by", String(128), nullable=False),
)

automation_jobs = Table(
    "automation_jobs",
    metadata_obj,
    Column("id", ID, primary_key=True),
    Column("policy", String(128), nullable=False),
    Column("model", String(256), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("trigger_key", String(256), nullable=False),
    Column("reason", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False),
    Column("lease_owner", String(128)),
    Column("lease_expires_at", BigInteger),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("scheduled_for", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("started_at", BigInteger),
    Column("finished_at", BigInteger),
    Column("result", JSON, nullable=False),
    Column("error", Text),
    UniqueConstraint("policy", "trigger_key", name="uq_automation_jobs_trigger"),
    Index("ix_automation_jobs_status", "status", "scheduled_for"),
    Index("ix_automation_jobs_policy", "policy", "created_at"),
)

automation_agents = Table(
    "automation_agents",
    metadata_obj,
    Column("id", String(128), primary_key=True),
    Column("host", String(256), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("runner", String(16), nullable=False),
    Column("clock", String(128), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("heartbeat_at", BigInteger, nullable=False),
    Column("clock_now", BigInteger, nullable=False),
    Column("stopped_at", BigInteger),
    Column("running_jobs", Integer, nullable=False, default=0),
    Column("ticks", Integer, nullable=False, default=0),
)

automation_watches = Table(
    "automation_watches",
    metadata_obj,
    Column("id", ID, primary_key=True),
    Column("policy", String(128), nullable=False),
    Column("model", String(256), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("previous_version", Integer),
    # The alias move being watched: one watch per move, however many agents see it.
    Column("alias_change_id", BigInteger, nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("ends_at", BigInteger, nullable=False),
    Column("baseline", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("decided_at", BigInteger),
    UniqueConstraint("policy", "alias_change_id", name="uq_automation_watches_move"),
    Index("ix_automation_watches_status", "status"),
)
