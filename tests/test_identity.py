"""Users, API tokens, projects and grants: tokens are secrets shown once, roles add up per
project, and only an admin manages anyone but themselves."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

import conveyor.governance.users as users_module
from conveyor.core.db import metadata_obj
from conveyor.core.workspace import Workspace
from conveyor.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    ValidationError,
)
from conveyor.governance import Actor, IdentityService, acting_as, current_actor

ADMIN = Actor("alice", frozenset({"platform-admin"}))


@pytest.fixture
def identity(workspace: Workspace) -> IdentityService:
    """The identity service with a first user, alice, the platform admin (created by whoever)."""
    workspace.identity.create_user("alice", ["platform-admin"], display_name="Alice A.")
    with acting_as(ADMIN):
        workspace.identity.create_user("bob", ["data-scientist"])
    return workspace.identity


def _every_stored_value(workspace: Workspace) -> str:
    with workspace.metadata.read() as conn:
        names = set(sa.inspect(conn).get_table_names())
        return "\n".join(
            repr(tuple(row)) for table in metadata_obj.sorted_tables if table.name in names
            for row in conn.execute(sa.select(table))
        )


def test_a_token_is_shown_once_and_stored_only_as_its_hash(identity: IdentityService, workspace: Workspace) -> None:
    with acting_as(Actor("bob", frozenset())):
        token, info = identity.create_token(name="laptop", expires_in=timedelta(days=30))
        listed = identity.list_tokens()
    assert token.startswith("cvy_") and len(token) > 40
    assert info.prefix == token[:8] and info.user == "bob" and info.name == "laptop"
    assert [t.id for t in listed] == [info.id]
    assert all(token not in repr(t.model_dump()) for t in listed)
    stored = _every_stored_value(workspace)
    assert token not in stored and token[8:] not in stored
    assert users_module.hash_token(token) in stored
    assert identity.authenticate(token) == Actor("bob", frozenset({"data-scientist"}))


def test_an_unknown_token_is_refused_naming_the_token(identity: IdentityService) -> None:
    for bad in ("cvy_not-a-token", "Bearer x", ""):
        with pytest.raises(Unauthenticated, match="API token is unknown") as error:
            identity.authenticate(bad)
        assert error.value.field == "token"


def test_an_expired_token_is_refused_even_when_remembered(identity: IdentityService) -> None:
    with acting_as(ADMIN):
        token, _ = identity.create_token("bob", expires_in=timedelta(milliseconds=300))
    assert identity.authenticate(token).name == "bob"
    time.sleep(0.4)
    with pytest.raises(Unauthenticated, match=r"API token cvy_.{4}… of user 'bob' expired at"):
        identity.authenticate(token)


def test_a_revoked_token_is_refused_at_once_here_and_within_the_cache_ttl_elsewhere(
        identity: IdentityService, workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users_module, "CACHE_TTL_S", 0.5)
    other_process = IdentityService(workspace.metadata, lambda: ADMIN)
    with acting_as(Actor("bob", frozenset())):
        token, info = identity.create_token(name="ci")
    assert other_process.authenticate(token).name == "bob"
    with acting_as(Actor("bob", frozenset())):
        assert identity.revoke_token(info.id).revoked_at is not None
    with pytest.raises(Unauthenticated, match=r"\('ci'\) of user 'bob' was revoked"):
        identity.authenticate(token)
    assert other_process.authenticate(token).name == "bob"  # still remembered there
    time.sleep(0.6)
    with pytest.raises(Unauthenticated, match="was revoked"):
        other_process.authenticate(token)


def test_a_remembered_token_costs_no_database_round_trip(identity: IdentityService, workspace: Workspace) -> None:
    with acting_as(ADMIN):
        token, info = identity.create_token("bob")
    identity.authenticate(token)
    statements: list[str] = []
    sa.event.listen(workspace.metadata.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    for _ in range(100):
        identity.authenticate(token)
    assert statements == []
    with acting_as(ADMIN):
        first_use = identity.list_tokens("bob")[0].last_used_at
    assert first_use is not None


def test_last_use_is_written_at_most_once_a_minute(identity: IdentityService, workspace: Workspace,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users_module, "CACHE_TTL_S", 0.0)
    with acting_as(ADMIN):
        token, _ = identity.create_token("bob")
    writes: list[str] = []
    sa.event.listen(workspace.metadata.engine, "before_cursor_execute",
                    lambda *args: writes.append(args[2]) if args[2].lstrip().upper().startswith("UPDATE") else None)
    for _ in range(5):
        identity.authenticate(token)
    assert len(writes) == 1


def test_a_disabled_user_can_no_longer_sign_in(identity: IdentityService) -> None:
    with acting_as(ADMIN):
        token, _ = identity.create_token("bob")
        identity.authenticate(token)
        identity.disable_user("bob")
        with pytest.raises(Conflict, match="disabled"):
            identity.create_token("bob")
    with pytest.raises(Unauthenticated, match="user 'bob' is disabled"):
        identity.authenticate(token)


def test_project_grants_add_roles_only_in_that_project(identity: IdentityService) -> None:
    with acting_as(ADMIN):
        identity.create_project("fraud", "fraud models")
        identity.create_project("churn")
        identity.grant("fraud", "bob", "ml_engineer")
        identity.grant("fraud", "bob", "ml-engineer")  # again: nothing changes
        token, _ = identity.create_token("bob")
        assert [(g.project, g.role) for g in identity.list_grants(user="bob")] == [("fraud", "ml-engineer")]
    assert identity.authenticate(token, "fraud").roles == {"data-scientist", "ml-engineer"}
    assert identity.authenticate(token, "churn").roles == {"data-scientist"}
    assert identity.authenticate(token).roles == {"data-scientist"}
    with pytest.raises(Unauthenticated, match="project 'nope' does not exist") as error:
        identity.authenticate(token, "nope")
    assert error.value.field == "project"
    with acting_as(ADMIN):
        identity.revoke_grant("fraud", "bob", "ml-engineer")
        with pytest.raises(NotFound, match="holds no role ml-engineer in project 'fraud'"):
            identity.revoke_grant("fraud", "bob", "ml-engineer")
    assert identity.authenticate(token, "fraud").roles == {"data-scientist"}


def test_only_an_admin_manages_users_after_the_first_one(identity: IdentityService) -> None:
    bob = Actor("bob", frozenset({"data-scientist", "ml-engineer"}))
    with acting_as(bob):
        with pytest.raises(PermissionDenied, match="user 'bob' lacks permission users.admin: needs role platform-admin"):
            identity.create_user("mallory", ["platform-admin"])
        with pytest.raises(PermissionDenied, match="users.admin"):
            identity.create_token("alice")
        with pytest.raises(PermissionDenied, match="users.admin"):
            identity.set_roles("bob", ["platform-admin"])
        with pytest.raises(PermissionDenied, match="users.admin"):
            identity.list_tokens("alice")
        assert identity.get_user("bob").roles == ["data-scientist"]
        with pytest.raises(PermissionDenied, match="users.admin"):
            identity.get_user("alice")
    with acting_as(ADMIN):
        alice_token, info = identity.create_token()
        assert identity.find_user("mallory") is None
    with acting_as(bob), pytest.raises(PermissionDenied, match="users.admin"):
        identity.revoke_token(info.id)
    assert identity.authenticate(alice_token).name == "alice"


def test_roles_and_names_are_checked_naming_the_field(identity: IdentityService) -> None:
    with acting_as(ADMIN):
        with pytest.raises(ValidationError, match="unknown role 'wizard'") as error:
            identity.create_user("carol", ["viewer", "wizard"])
        assert error.value.field == "role"
        with pytest.raises(ValidationError) as error:
            identity.create_user("no spaces")
        assert error.value.field == "name"
        with pytest.raises(Conflict, match="user 'bob' exists already"):
            identity.create_user("bob")
        with pytest.raises(ValidationError) as error:
            identity.create_token("bob", expires_in=timedelta(0))
        assert error.value.field == "expires_in"
        with pytest.raises(NotFound, match="user 'carol' does not exist"):
            identity.grant("default", "carol", "viewer")
        with pytest.raises(Conflict, match="last platform-admin"):
            identity.set_roles("alice", ["viewer"])
        assert identity.set_roles("bob", ["validator", "data_scientist"]).roles == ["data-scientist", "validator"]


def test_in_process_a_stored_user_acts_with_their_stored_roles(identity: IdentityService, workspace: Workspace) -> None:
    settings = workspace.settings.model_copy(update={"user": "bob", "project": "fraud"})
    with acting_as(ADMIN):
        identity.create_project("fraud")
        identity.grant("fraud", "bob", "validator")
    assert current_actor(settings, identity.find_actor).roles == {"data-scientist", "validator"}
    stranger = settings.model_copy(update={"user": "zoe", "roles": {"zoe": ["viewer"]}})
    assert current_actor(stranger, identity.find_actor).roles == {"viewer"}
    with acting_as(ADMIN):
        identity.disable_user("bob")
    assert current_actor(settings, identity.find_actor).roles == frozenset()


def test_the_cli_creates_users_and_tokens_and_refuses_a_bad_expiry(workspace: Workspace, run_cli) -> None:  # noqa: ANN001
    created = run_cli(workspace, "users", "create", "alice", "--role", "platform-admin", "--display-name", "Alice A.",
                      user="alice")
    assert created.returncode == 0, created.stderr
    assert "created user alice with roles platform-admin" in created.stdout
    token = run_cli(workspace, "tokens", "create", "--name", "laptop", "--expires", "30d", user="alice")
    assert token.returncode == 0, token.stderr
    [secret] = [line for line in token.stdout.splitlines() if line.startswith("cvy_")]
    assert "shown only once" in token.stdout
    actor = workspace.identity.authenticate(secret)
    assert actor == Actor("alice", frozenset({"platform-admin"}))
    with acting_as(actor):
        [info] = workspace.identity.list_tokens()
    assert info.expires_at is not None and 29.9 < (info.expires_at - info.created_at) / 86_400_000 <= 30
    bad = run_cli(workspace, "tokens", "create", "--expires", "soon", user="alice")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: --expires 'soon': give a duration such as 12h, 30d or 1w, or 'never'"
