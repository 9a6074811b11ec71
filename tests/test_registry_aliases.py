"""Aliases move atomically, keep their history and roll back; concurrent movers on
PostgreSQL never lose or interleave a move."""

from __future__ import annotations

import itertools
import threading

import pytest
from registry_support import as_user, credit_frame, log_version

from conveyor.core.config import load_settings
from conveyor.core.workspace import Workspace
from conveyor.errors import Conflict, NotFound, ValidationError

pytestmark = pytest.mark.both_modes


@pytest.fixture
def three_versions(workspace: Workspace) -> Workspace:
    for seed in (1, 2, 3):
        log_version(workspace, "churn", credit_frame(rows=200, seed=seed))
    return workspace


def test_set_move_and_resolve_alias(three_versions: Workspace) -> None:
    registry = three_versions.registry
    registry.set_alias("churn", "champion", 1)
    registry.set_alias("churn", "champion", 2)
    assert registry.get_model_version("churn", "champion").version == 2
    assert registry.get_model_version("churn", 1).aliases == []
    assert registry.get_registered_model("churn").aliases == {"champion": 2}
    registry.set_alias("churn", "challenger", "champion")
    assert registry.get_registered_model("churn").aliases == {"champion": 2, "challenger": 2}
    history = registry.alias_history("churn", "champion")
    assert [(h.action, h.version, h.previous_version) for h in history] == [("set", 1, None), ("set", 2, 1)]


def test_rollback_walks_back_through_history(three_versions: Workspace) -> None:
    registry = three_versions.registry
    for version in (1, 2, 3):
        registry.set_alias("churn", "champion", version)
    assert registry.rollback_alias("churn", "champion").version == 2
    assert registry.rollback_alias("churn", "champion").version == 1
    with pytest.raises(Conflict, match="no earlier version"):
        registry.rollback_alias("churn", "champion")
    registry.set_alias("churn", "champion", 3)
    assert registry.rollback_alias("churn", "champion").version == 1


def test_rollback_skips_a_deletion(three_versions: Workspace) -> None:
    registry = three_versions.registry
    registry.set_alias("churn", "champion", 1)
    registry.delete_alias("churn", "champion")
    registry.set_alias("churn", "champion", 3)
    assert registry.rollback_alias("churn", "champion").version == 1


def test_alias_errors_name_the_problem(three_versions: Workspace) -> None:
    registry = three_versions.registry
    with pytest.raises(NotFound) as missing:
        registry.set_alias("churn", "champion", 9)
    assert (missing.value.field, "no version 9" in missing.value.message) == ("version", True)
    with pytest.raises(ValidationError) as bad:
        registry.set_alias("churn", "2nd", 1)
    assert bad.value.field == "alias"
    with pytest.raises(ValidationError):
        registry.set_alias("churn", "latest", 1)
    with pytest.raises(NotFound, match="no alias 'champion'"):
        registry.delete_alias("churn", "champion")
    with pytest.raises(NotFound, match="'nope' does not exist"):
        registry.set_alias("nope", "champion", 1)


def test_every_alias_move_is_audited(three_versions: Workspace) -> None:
    registry = three_versions.registry
    registry.set_alias("churn", "champion", 1)
    registry.set_alias("churn", "champion", 2)
    registry.rollback_alias("churn", "champion")
    entries = three_versions.audit.list_entries("churn@champion", newest_first=False)
    assert [(e.action, e.before, e.after) for e in entries] == [
        ("alias.set", None, {"version": 1}),
        ("alias.set", {"version": 1}, {"version": 2}),
        ("alias.rollback", {"version": 2}, {"version": 1}),
    ]


@pytest.mark.postgres
def test_concurrent_alias_moves_are_atomic_on_postgres(postgres_url: str, tmp_path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    owner = Workspace(load_settings(root, metadata={"url": postgres_url}, user="owner"))
    for seed in (1, 2, 3, 4):
        log_version(owner, "credit-risk", credit_frame(rows=150, seed=seed))
    movers = [as_user(owner, f"mover{i}") for i in range(6)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(movers))

    def move(ws: Workspace, index: int) -> None:
        try:
            start.wait()
            for step in range(15):
                ws.registry.set_alias("credit-risk", "champion", (index + step) % 4 + 1)
        except BaseException as error:  # noqa: BLE001  reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=move, args=(ws, i)) for i, ws in enumerate(movers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    history = owner.registry.alias_history("credit-risk", "champion")
    assert all(later.previous_version == earlier.version for earlier, later in itertools.pairwise(history))
    assert owner.registry.get_model_version("credit-risk", "champion").version == history[-1].version
    entries = owner.audit.list_entries("credit-risk@champion", limit=1000, newest_first=False)
    assert len(entries) == len(history)
    assert owner.audit.verify().ok
    for ws in (owner, *movers):
        ws.close()
