"""The metadata store: migrations on open, the same schema on both backends, SQLite pragmas."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import conveyor.governance.tables
import conveyor.registry.tables
import conveyor.tracking.tables  # noqa: F401
from conveyor.core.db import MetadataStore, metadata_obj
from conveyor.core.db.store import VERSION_TABLE, alembic_config
from conveyor.errors import ConveyorError, Unavailable


def test_opening_a_new_database_applies_every_migration(metadata_url: str) -> None:
    store = MetadataStore(metadata_url)
    with store.read() as conn:
        names = set(sa.inspect(conn).get_table_names())
        revision = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one()
    assert {"experiments", "runs", "params", "tags", "metric_chunks", "latest_metrics", "artifacts"} <= names
    assert {"registered_models", "model_versions", "model_aliases", "alias_history", "audit_log"} <= names
    assert {"feature_definitions", "feature_materializations", "feature_statistics", "feature_datasets"} <= names
    assert revision == "0009"
    store.dispose()


def test_a_database_made_by_the_tracking_release_upgrades_with_its_data(metadata_url: str) -> None:
    engine = sa.create_engine(metadata_url)
    if metadata_url.startswith("sqlite"):
        Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
        conn.execute(sa.text("INSERT INTO experiments (id, name, created_at, deleted) VALUES ('e1', 'credit', 1, false)"))
        conn.execute(sa.text(
            "INSERT INTO runs (id, experiment_id, name, status, start_time, heartbeat_at, deleted) "
            "VALUES ('r1', 'e1', 'old run', 'FINISHED', 1, 1, false)"
        ))
    engine.dispose()
    store = MetadataStore(metadata_url)
    with store.read() as conn:
        assert conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one() == "0009"
        assert conn.execute(sa.text("SELECT name FROM runs WHERE id = 'r1'")).scalar_one() == "old run"
        assert conn.execute(sa.text("SELECT seq, hash FROM audit_head")).one() == (0, "0" * 64)
        assert conn.execute(sa.text("SELECT count(*) FROM pipeline_step_cache")).scalar_one() == 0
    store.dispose()


def test_a_database_made_by_the_automation_release_gains_identities(metadata_url: str) -> None:
    engine = sa.create_engine(metadata_url)
    if metadata_url.startswith("sqlite"):
        Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0008")
        conn.execute(sa.text("INSERT INTO experiments (id, name, created_at, deleted) VALUES ('e1', 'credit', 1, false)"))
    engine.dispose()
    store = MetadataStore(metadata_url)
    with store.read() as conn:
        assert conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one() == "0009"
        assert conn.execute(sa.text("SELECT name FROM experiments")).scalar_one() == "credit"
        assert conn.execute(sa.text("SELECT name FROM projects")).scalars().all() == ["default"]
        assert conn.execute(sa.text("SELECT count(*) FROM users")).scalar_one() == 0
        assert {"api_tokens", "project_grants"} <= set(sa.inspect(conn).get_table_names())
    store.dispose()


def test_the_migrated_schema_matches_the_table_definitions(metadata_url: str) -> None:
    store = MetadataStore(metadata_url)
    with store.read() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "version_table": VERSION_TABLE})
        differences = [d for d in compare_metadata(context, metadata_obj) if d[0] != "remove_table"]
    assert differences == []
    store.dispose()


def test_reopening_keeps_data_and_does_not_migrate_again(metadata_url: str) -> None:
    first = MetadataStore(metadata_url)
    with first.write() as conn:
        conn.execute(sa.text("INSERT INTO experiments (id, name, created_at, deleted) VALUES ('e1', 'x', 1, false)"))
    first.dispose()
    second = MetadataStore(metadata_url)
    with second.read() as conn:
        assert conn.execute(sa.text("SELECT name FROM experiments")).scalar_one() == "x"
    second.dispose()


def test_a_database_from_a_newer_conveyor_is_refused(metadata_url: str) -> None:
    store = MetadataStore(metadata_url)
    with store.write() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    store.dispose()
    with pytest.raises(ConveyorError, match="revision 9999, newer than this Conveyor knows"):
        MetadataStore(metadata_url)


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    store = MetadataStore(f"sqlite:///{tmp_path / 'c.db'}")
    with store.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() >= 30_000
    store.dispose()


def test_a_failed_write_transaction_leaves_nothing_behind(metadata_url: str) -> None:
    store = MetadataStore(metadata_url)
    with pytest.raises(RuntimeError), store.write() as conn:
        conn.execute(sa.text("INSERT INTO experiments (id, name, created_at, deleted) VALUES ('e1', 'x', 1, false)"))
        raise RuntimeError("boom")
    with store.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM experiments")).scalar_one() == 0
    store.dispose()


def test_an_unreachable_postgres_is_unavailable_not_a_driver_error() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(Unavailable, match="unreachable"):
        MetadataStore("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
