"""Users, their API tokens, projects and the roles granted in them.

A user holds global roles, and more in each project they are granted; where they act
they hold the union (``authenticate`` and, in-process, ``find_actor``). An API token is
``cvy_`` and 43 random characters, shown once by ``create_token``: only its SHA-256 is
stored, so a copy of the database lets nobody sign in.

Authenticating is on every server request, so a token that checked out is remembered in
this process for ``CACHE_TTL_S`` seconds and its ``last_used_at`` written at most once a
minute: a request costs no database round trip. The price is that a token revoked (or a
user disabled, or a role taken away) by another process keeps working here for up to
``CACHE_TTL_S`` seconds; changes made through this service apply at once.

Managing users, projects and grants needs ``users.admin`` (role ``platform-admin``),
except that the first user of a workspace may be created by anyone: that is how the
first admin comes to exist. Anyone may create, list and revoke their own tokens.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, select, update

from conveyor.core.db import MetadataStore
from conveyor.core.db.base import now_ms
from conveyor.errors import (
    Conflict,
    NotFound,
    Unauthenticated,
    Unavailable,
    ValidationError,
)
from conveyor.governance.audit import AuditLog
from conveyor.governance.identity import Actor
from conveyor.governance.permissions import ROLES, Action, requires
from conveyor.governance.schemas import Grant, Project, TokenInfo, User
from conveyor.governance.tables import api_tokens, project_grants, projects, users

log = logging.getLogger(__name__)

TOKEN_PREFIX = "cvy_"
DEFAULT_PROJECT = "default"
ADMIN_ROLE = "platform-admin"
CACHE_TTL_S = 5.0
"""How long a checked token is trusted in this process without asking the database."""
CACHE_SIZE = 10_000
LAST_USED_EVERY_MS = 60_000
"""``last_used_at`` is written at most this often per token."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")


def check_name(value: Any, field: str) -> str:
    """A user or project name: letters, digits, ``_ . @ -``, up to 128 characters."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValidationError(
            f"{field} {value!r} must be 1 to 128 letters, digits, '_', '.', '@' or '-', starting with a letter or digit",
            field=field,
        )
    return value


def check_role(role: Any) -> str:
    """A role of the permission matrix (``data_scientist`` is read as ``data-scientist``)."""
    value = role.replace("_", "-") if isinstance(role, str) else role
    if value not in ROLES:
        raise ValidationError(f"unknown role {role!r}: roles are {', '.join(ROLES)}", field="role")
    return value


def check_roles(roles: Iterable[str] | str) -> list[str]:
    """Roles checked and de-duplicated, in the matrix's order; a single string is one role."""
    given = [roles] if isinstance(roles, str) else list(roles)
    wanted = {check_role(role) for role in given}
    return [role for role in ROLES if role in wanted]


def hash_token(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _user(row: Any) -> User:
    return User(name=row.name, display_name=row.display_name, roles=list(row.roles), disabled=row.disabled,
                created_at=row.created_at, created_by=row.created_by)


def _token(row: Any) -> TokenInfo:
    return TokenInfo(id=row.id, user=row.user, name=row.name, prefix=row.prefix, created_at=row.created_at,
                     expires_at=row.expires_at, revoked_at=row.revoked_at, last_used_at=row.last_used_at)


def _token_label(row: Any) -> str:
    return f"API token {row.prefix}…" + (f" ('{row.name}')" if row.name else "") + f" of user '{row.user}'"


@dataclass(frozen=True)
class _Checked:
    """A token that checked out, remembered until ``until`` (monotonic seconds)."""

    actor: Actor
    expires_at: int | None
    until: float


class IdentityService:
    """Users, API tokens, projects and grants of one workspace.

    Args:
        store: the metadata store.
        actor_source: who acts now (a workspace's ``actor``), asked at each call.
    """

    def __init__(self, store: MetadataStore, actor_source: Callable[[], Actor]) -> None:
        self.store = store
        self.actor_source = actor_source
        self.audit = AuditLog(store)
        self._checked: dict[tuple[str, str], _Checked] = {}
        self._lock = threading.Lock()

    @property
    def actor(self) -> Actor:
        """Who acts now."""
        return self.actor_source()

    def _forget(self) -> None:
        """Drop remembered tokens: a change here applies to the next request at once."""
        with self._lock:
            self._checked.clear()

    def _require_self_or_admin(self, user: str) -> None:
        if user != self.actor.name:
            self.actor.require(Action.USERS_ADMIN)

    # users ---------------------------------------------------------------------------------

    def _user_row(self, conn: Connection, name: str) -> Any:
        row = conn.execute(select(users).where(users.c.name == name)).first()
        if row is None:
            raise NotFound(f"user '{name}' does not exist", field="user")
        return row

    def _global_admins(self, conn: Connection) -> set[str]:
        rows = conn.execute(select(users.c.name, users.c.roles).where(users.c.disabled.is_(False))).all()
        return {name for name, roles in rows if ADMIN_ROLE in roles}

    def _check_admin_remains(self, conn: Connection, name: str, field: str) -> None:
        """Refuse to take platform-admin from the last enabled one: nobody could manage users."""
        admins = self._global_admins(conn)
        if name in admins and not admins - {name}:
            raise Conflict(f"user '{name}' is the last platform-admin: make another user platform-admin first",
                           field=field)

    def create_user(self, name: str, roles: Iterable[str] | str = (), display_name: str | None = None) -> User:
        """Create a user holding ``roles`` globally (in every project).

        Needs ``users.admin``, except for the workspace's first user, whom anyone may create
        (typically ``conveyor users create alice --role platform-admin``).

        Raises:
            PermissionDenied: users exist and the actor is not a platform-admin.
            ValidationError: the name or a role is invalid (``field`` ``name`` or ``role``).
            Conflict: the name is taken.
        """
        with self.audit.transaction() as tx:
            if tx.conn.execute(select(users.c.name).limit(1)).first() is not None:
                self.actor.require(Action.USERS_ADMIN)
            check_name(name, "name")
            checked = check_roles(roles)
            if display_name is not None and (not isinstance(display_name, str) or len(display_name) > 256):
                raise ValidationError("display name must be text of at most 256 characters", field="display_name")
            if tx.conn.execute(select(users.c.name).where(users.c.name == name)).first() is not None:
                raise Conflict(f"user '{name}' exists already", field="name")
            row = {"name": name, "display_name": display_name, "roles": checked, "disabled": False,
                   "created_at": now_ms(), "created_by": self.actor.name}
            tx.conn.execute(users.insert().values(**row))
            tx.record(self.actor.name, "user.created", f"user:{name}", None,
                      {"roles": checked, "display_name": display_name})
        return User(**row)

    # Anyone may create the first user; after that it takes users.admin (checked in the body).
    create_user.__conveyor_action__ = Action.USERS_ADMIN  # type: ignore[attr-defined]

    def find_user(self, name: str) -> User | None:
        """The user ``name``, or ``None``; anyone may read themselves, others need ``users.admin``."""
        self._require_self_or_admin(name)
        with self.store.read() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).first()
        return None if row is None else _user(row)

    find_user.__conveyor_action__ = Action.USERS_ADMIN  # type: ignore[attr-defined]

    def get_user(self, name: str) -> User:
        """The user ``name``; ``NotFound`` (field ``user``) if there is none."""
        found = self.find_user(name)
        if found is None:
            raise NotFound(f"user '{name}' does not exist", field="user")
        return found

    get_user.__conveyor_action__ = Action.USERS_ADMIN  # type: ignore[attr-defined]

    @requires(Action.USERS_ADMIN)
    def list_users(self) -> list[User]:
        """Every user, by name."""
        with self.store.read() as conn:
            return [_user(row) for row in conn.execute(select(users).order_by(users.c.name))]

    @requires(Action.USERS_ADMIN)
    def set_roles(self, name: str, roles: Iterable[str] | str) -> User:
        """Replace a user's global roles (project grants stay).

        Raises:
            ValidationError: a role is unknown (field ``role``).
            NotFound: no such user.
            Conflict: it would leave no enabled platform-admin.
        """
        checked = check_roles(roles)
        with self.audit.transaction() as tx:
            row = self._user_row(tx.conn, name)
            if ADMIN_ROLE not in checked and not row.disabled:
                self._check_admin_remains(tx.conn, name, "role")
            if list(row.roles) != checked:
                tx.conn.execute(update(users).where(users.c.name == name).values(roles=checked))
                tx.record(self.actor.name, "user.roles_set", f"user:{name}", {"roles": list(row.roles)},
                          {"roles": checked})
            row = self._user_row(tx.conn, name)
        self._forget()
        return _user(row)

    @requires(Action.USERS_ADMIN)
    def disable_user(self, name: str) -> User:
        """Stop a user from acting: their tokens are refused (records keep their name).

        Raises:
            NotFound: no such user.
            Conflict: they are the last enabled platform-admin.
        """
        with self.audit.transaction() as tx:
            row = self._user_row(tx.conn, name)
            if not row.disabled:
                self._check_admin_remains(tx.conn, name, "name")
                tx.conn.execute(update(users).where(users.c.name == name).values(disabled=True))
                tx.record(self.actor.name, "user.disabled", f"user:{name}", {"disabled": False}, {"disabled": True})
            row = self._user_row(tx.conn, name)
        self._forget()
        log.info("user %s disabled by %s", name, self.actor.name)
        return _user(row)

    def find_actor(self, name: str, project: str = DEFAULT_PROJECT) -> Actor | None:
        """The actor a stored user is in ``project`` (global roles and grants there); no roles
        if disabled; ``None`` if there is no such user.

        How an in-process workspace decides who acts (``current_actor``), so it needs no
        permission: whoever calls it already reads the metadata store.
        """
        with self.store.read() as conn:
            row = conn.execute(select(users.c.roles, users.c.disabled).where(users.c.name == name)).first()
            if row is None:
                return None
            if row.disabled:
                return Actor(name=name, roles=frozenset())
            return Actor(name=name, roles=frozenset(row.roles) | self._granted(conn, name, project))

    # projects and grants ---------------------------------------------------------------------

    def _project_row(self, conn: Connection, name: str) -> Any:
        row = conn.execute(select(projects).where(projects.c.name == name)).first()
        if row is None:
            raise NotFound(f"project '{name}' does not exist", field="project")
        return row

    @staticmethod
    def _granted(conn: Connection, user: str, project: str) -> frozenset[str]:
        return frozenset(conn.execute(select(project_grants.c.role).where(
            project_grants.c.user == user, project_grants.c.project == project)).scalars())

    @requires(Action.USERS_ADMIN)
    def create_project(self, name: str, description: str = "") -> Project:
        """Create a project, where users may be granted roles beyond their global ones.

        Raises:
            ValidationError: the name is invalid (field ``name``).
            Conflict: the name is taken.
        """
        check_name(name, "name")
        row = {"name": name, "description": description or "", "created_at": now_ms(), "created_by": self.actor.name}
        with self.audit.transaction() as tx:
            if tx.conn.execute(select(projects.c.name).where(projects.c.name == name)).first() is not None:
                raise Conflict(f"project '{name}' exists already", field="name")
            tx.conn.execute(projects.insert().values(**row))
            tx.record(self.actor.name, "project.created", f"project:{name}", None, {"description": row["description"]})
        return Project(**row)

    @requires(Action.USERS_ADMIN)
    def list_projects(self) -> list[Project]:
        """Every project, by name (``default`` among them)."""
        with self.store.read() as conn:
            return [Project(**row._mapping) for row in conn.execute(select(projects).order_by(projects.c.name))]

    @requires(Action.USERS_ADMIN)
    def grant(self, project: str, user: str, role: str) -> Grant:
        """Let ``user`` hold ``role`` in ``project``; granting it again changes nothing.

        Raises:
            ValidationError: the role is unknown (field ``role``).
            NotFound: no such project or user.
        """
        role = check_role(role)
        with self.audit.transaction() as tx:
            self._project_row(tx.conn, project)
            self._user_row(tx.conn, user)
            key = (project_grants.c.project == project, project_grants.c.user == user, project_grants.c.role == role)
            row = tx.conn.execute(select(project_grants).where(*key)).first()
            if row is None:
                values = {"project": project, "user": user, "role": role, "created_at": now_ms(),
                          "created_by": self.actor.name}
                tx.conn.execute(project_grants.insert().values(**values))
                tx.record(self.actor.name, "grant.added", f"project:{project}/{user}", None, {"role": role})
                row = tx.conn.execute(select(project_grants).where(*key)).one()
        self._forget()
        return Grant(**row._mapping)

    @requires(Action.USERS_ADMIN)
    def revoke_grant(self, project: str, user: str, role: str) -> None:
        """Take ``role`` in ``project`` away from ``user``.

        Raises:
            ValidationError: the role is unknown (field ``role``).
            NotFound: the user holds no such grant.
        """
        role = check_role(role)
        with self.audit.transaction() as tx:
            removed = tx.conn.execute(delete(project_grants).where(
                project_grants.c.project == project, project_grants.c.user == user, project_grants.c.role == role))
            if removed.rowcount == 0:
                raise NotFound(f"user '{user}' holds no role {role} in project '{project}'", field="role")
            tx.record(self.actor.name, "grant.revoked", f"project:{project}/{user}", {"role": role}, None)
        self._forget()

    def list_grants(self, project: str | None = None, user: str | None = None) -> list[Grant]:
        """Grants, by project, user and role; of one project or user when given. Anyone may list
        their own (``user`` = themselves); others need ``users.admin``."""
        if user is None or user != self.actor.name:
            self.actor.require(Action.USERS_ADMIN)
        query = select(project_grants).order_by(project_grants.c.project, project_grants.c.user, project_grants.c.role)
        if project is not None:
            query = query.where(project_grants.c.project == project)
        if user is not None:
            query = query.where(project_grants.c.user == user)
        with self.store.read() as conn:
            return [Grant(**row._mapping) for row in conn.execute(query)]

    list_grants.__conveyor_action__ = Action.USERS_ADMIN  # type: ignore[attr-defined]

    # API tokens --------------------------------------------------------------------------------

    def create_token(self, user: str | None = None, name: str = "",
                     expires_in: timedelta | None = None) -> tuple[str, TokenInfo]:
        """A new API token of ``user`` (default: the actor); returns its plaintext, shown this
        once and stored only as a hash, and its description.

        Anyone may create tokens for themselves; for someone else it takes ``users.admin``.

        Args:
            name: a label to tell tokens apart (``ci``, ``laptop``).
            expires_in: how long it is valid; ``None``: until revoked.

        Raises:
            ValidationError: ``expires_in`` is not a positive duration, or the label is too long.
            NotFound: no such user.
            Conflict: the user is disabled.
        """
        owner = self.actor.name if user is None else user
        self._require_self_or_admin(owner)
        if not isinstance(name, str) or len(name) > 128:
            raise ValidationError("a token's name must be text of at most 128 characters", field="name")
        if expires_in is not None and (not isinstance(expires_in, timedelta) or expires_in <= timedelta(0)):
            raise ValidationError(f"expires_in must be a positive timedelta or None, got {expires_in!r}",
                                  field="expires_in")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = now_ms()
        row = {"id": uuid.uuid4().hex, "user": owner, "name": name, "token_hash": hash_token(token),
               "prefix": token[:8], "created_at": now, "last_used_at": None, "revoked_at": None,
               "expires_at": None if expires_in is None else now + int(expires_in.total_seconds() * 1000)}
        with self.audit.transaction() as tx:
            if self._user_row(tx.conn, owner).disabled:
                raise Conflict(f"user '{owner}' is disabled", field="user")
            tx.conn.execute(api_tokens.insert().values(**row))
            tx.record(self.actor.name, "token.created", f"user:{owner}", None,
                      {"token": row["id"], "name": name, "expires_at": row["expires_at"]})
        log.info("API token %s of %s created by %s", row["id"], owner, self.actor.name)
        return token, TokenInfo(**{key: row[key] for key in TokenInfo.model_fields})

    create_token.__conveyor_action__ = Action.USERS_ADMIN  # type: ignore[attr-defined]

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        """The tokens of ``user`` (default: the actor), newest first, revoked and expired ones
        too; never a secret or hash. Another user's need ``users.admin``."""
        owner = self.actor.name if user is None else user
        self._require_self_or_admin(owner)
        query = select(api_tokens).where(api_tokens.c.user == owner).order_by(api_tokens.c.created_at.desc())
        with self.store.read() as conn:
            return [_token(row) for row in conn.execute(query)]

    list_tokens.__conveyor_action__ = Action.USERS_ADMIN  # type: ignore[attr-defined]

    def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke a token by id: it is refused from now on (by other server processes within
        ``CACHE_TTL_S`` seconds). Your own, or anyone's with ``users.admin``; revoking twice
        changes nothing.

        Raises:
            NotFound: no token has this id (field ``token_id``).
        """
        with self.audit.transaction() as tx:
            row = tx.conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).first()
            if row is None:
                raise NotFound(f"no API token has id '{token_id}'", field="token_id")
            self._require_self_or_admin(row.user)
            if row.revoked_at is None:
                tx.conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(revoked_at=now_ms()))
                tx.record(self.actor.name, "token.revoked", f"user:{row.user}", None, {"token": token_id})
            row = tx.conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).one()
        self._forget()
        return _token(row)

    revoke_token.__conveyor_action__ = Action.USERS_ADMIN  # type: ignore[attr-defined]

    def authenticate(self, token: str, project: str | None = None) -> Actor:
        """The actor an API token signs in as in ``project`` (default ``default``): its user
        with their global roles and those granted there.

        A token that checked out is trusted for ``CACHE_TTL_S`` seconds without asking the
        database again (see the module's docstring).

        Raises:
            Unauthenticated: the token is unknown, expired or revoked, its user is disabled,
                or the project does not exist.
        """
        project = project or DEFAULT_PROJECT
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX):
            raise Unauthenticated("the API token is unknown (Conveyor tokens start with cvy_)", field="token")
        key = (hash_token(token), project)
        checked = self._checked.get(key)
        if checked is not None and checked.until > time.monotonic() and (
                checked.expires_at is None or checked.expires_at > now_ms()):
            return checked.actor
        actor, expires_at = self._check(key[0], project)
        with self._lock:
            if len(self._checked) >= CACHE_SIZE:
                self._checked.clear()
            self._checked[key] = _Checked(actor, expires_at, time.monotonic() + CACHE_TTL_S)
        return actor

    def _check(self, digest: str, project: str) -> tuple[Actor, int | None]:
        now = now_ms()
        with self.store.read() as conn:
            row = conn.execute(
                select(api_tokens, users.c.roles, users.c.disabled)
                .join(users, users.c.name == api_tokens.c.user)
                .where(api_tokens.c.token_hash == digest)
            ).first()
            if row is None:
                raise Unauthenticated("the API token is unknown: create one with `conveyor tokens create`",
                                      field="token")
            if row.revoked_at is not None:
                raise Unauthenticated(f"{_token_label(row)} was revoked at {_iso(row.revoked_at)}", field="token")
            if row.expires_at is not None and row.expires_at <= now:
                raise Unauthenticated(f"{_token_label(row)} expired at {_iso(row.expires_at)}", field="token")
            if row.disabled:
                raise Unauthenticated(f"user '{row.user}' is disabled", field="token")
            if project != DEFAULT_PROJECT and conn.execute(
                    select(projects.c.name).where(projects.c.name == project)).first() is None:
                raise Unauthenticated(f"project '{project}' does not exist", field="project")
            roles = frozenset(row.roles) | self._granted(conn, row.user, project)
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY_MS:
            self._touch(row.id, now)
        return Actor(name=row.user, roles=roles), row.expires_at

    def _touch(self, token_id: str, now: int) -> None:
        """Record that a token was used; advisory, so a busy database does not refuse the request."""
        try:
            with self.store.write() as conn:
                conn.execute(update(api_tokens).where(
                    api_tokens.c.id == token_id,
                    (api_tokens.c.last_used_at.is_(None)) | (api_tokens.c.last_used_at <= now - LAST_USED_EVERY_MS),
                ).values(last_used_at=now))
        except Unavailable as exc:
            log.warning("could not record the use of API token %s: %s", token_id, exc.message)
