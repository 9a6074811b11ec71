"""The audit log is append-only and tamper-evident: ``verify`` catches an edited,
deleted or truncated entry, and the database refuses UPDATE and DELETE."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from conveyor.core.workspace import Workspace
from conveyor.errors import Conflict, ConveyorError

DROP_GUARDS = {
    "sqlite": ["DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete"],
    "postgresql": ["DROP TRIGGER audit_log_append_only ON audit_log"],
}


def _changes(workspace: Workspace) -> None:
    registry = workspace.registry
    registry.create_registered_model("credit-risk", description="PD model", risk_tier="high")
    registry.update_registered_model("credit-risk", owner_team="credit")
    registry.create_registered_model("churn", risk_tier="low")
    registry.update_registered_model("churn", description="who leaves")


def _tamper(workspace: Workspace, *statements: str) -> None:
    engine = workspace.metadata.engine
    with engine.begin() as conn:
        for statement in DROP_GUARDS[engine.dialect.name]:
            conn.exec_driver_sql(statement)
        for statement in statements:
            conn.execute(sa.text(statement))


def test_each_change_is_recorded_with_actor_and_before_after(workspace: Workspace) -> None:
    _changes(workspace)
    entries = workspace.audit.list_entries(newest_first=False)
    assert [(e.seq, e.action, e.entity) for e in entries] == [
        (1, "model.created", "credit-risk"), (2, "model.updated", "credit-risk"),
        (3, "model.created", "churn"), (4, "model.updated", "churn"),
    ]
    assert entries[1].before == {"owner_team": None} and entries[1].after == {"owner_team": "credit"}
    assert all(e.actor == workspace.actor.name for e in entries)
    assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]
    result = workspace.audit.verify()
    assert (result.ok, result.entries, result.head_seq, result.head_hash) == (True, 4, 4, entries[-1].hash)


def test_database_refuses_update_and_delete(workspace: Workspace) -> None:
    _changes(workspace)
    for statement in ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2", "DELETE FROM audit_log WHERE seq = 4"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), workspace.metadata.engine.begin() as conn:
            conn.execute(sa.text(statement))
    assert workspace.audit.verify().ok


def test_verify_catches_a_modified_row(workspace: Workspace) -> None:
    _changes(workspace)
    _tamper(workspace, "UPDATE audit_log SET after = '{\"owner_team\":\"fraud\"}' WHERE seq = 2")
    result = workspace.audit.verify()
    assert not result.ok
    assert result.problems == ["entry 2 (model.updated credit-risk) was modified"]


def test_verify_catches_a_deleted_row(workspace: Workspace) -> None:
    _changes(workspace)
    _tamper(workspace, "DELETE FROM audit_log WHERE seq = 2")
    problems = workspace.audit.verify().problems
    assert "entry 2 is missing (next entry is 3)" in problems
    assert "entry 3 does not link to the entry before it" in problems


def test_verify_catches_a_truncated_tail(workspace: Workspace) -> None:
    _changes(workspace)
    _tamper(workspace, "DELETE FROM audit_log WHERE seq >= 3")
    assert workspace.audit.verify().problems == [
        "the log ends at entry 2 but its head records entry 4: entries were removed"
    ]


def test_rewritten_chain_is_caught_by_an_anchor_kept_elsewhere(workspace: Workspace) -> None:
    _changes(workspace)
    anchor = workspace.audit.verify()
    _tamper(workspace, "DELETE FROM audit_log WHERE seq = 4")
    last = workspace.audit.list_entries(limit=1)[0]
    with workspace.metadata.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_head SET seq = 3, hash = :h"), {"h": last.hash})
    assert workspace.audit.verify().ok
    assert not workspace.audit.verify(expect_head=f"{anchor.head_seq}:{anchor.head_hash}").ok


def test_a_failed_change_leaves_no_entry(workspace: Workspace) -> None:
    _changes(workspace)
    with pytest.raises(Conflict):
        workspace.registry.create_registered_model("churn")
    assert workspace.audit.verify().entries == 4


def test_cli_verify_exits_6_on_tampering(workspace: Workspace, run_cli) -> None:
    _changes(workspace)
    ok = run_cli(workspace, "audit", "verify")
    assert ok.returncode == 0 and "4 entries" in ok.stdout
    _tamper(workspace, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 1")
    broken = run_cli(workspace, "audit", "verify")
    assert broken.returncode == 6
    assert broken.stderr.strip().splitlines() == ["error: audit log tampered: entry 1 (model.created credit-risk) was modified"]
    listed = run_cli(workspace, "audit", "list", "--entity", "churn", "--json")
    assert [e["action"] for e in __import__("json").loads(listed.stdout)] == ["model.updated", "model.created"]


def test_conveyor_error_is_base(workspace: Workspace) -> None:
    assert issubclass(Conflict, ConveyorError)
