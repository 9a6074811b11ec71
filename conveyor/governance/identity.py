"""Who is acting, and what their roles let them do.

In-process, the actor comes from configuration: ``CONVEYOR_USER`` (or ``user:`` in
``conveyor.yaml``) names it; a user created with ``conveyor users create`` acts with the
roles stored for them (global, plus those granted in ``project:``), anyone else with
those ``roles:`` maps them to (else ``default_roles``). The server instead
authenticates each request's API token and runs the request ``acting_as`` its user;
services read ``self.actor``, which is the request's actor when there is one.
"""

from __future__ import annotations

import contextlib
import contextvars
import getpass
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from conveyor.core.config import Settings
from conveyor.errors import PermissionDenied
from conveyor.governance.permissions import Action, allowed, roles_for

SYSTEM_ACTOR = "conveyor"


@dataclass(frozen=True)
class Actor:
    """A user and the roles they hold where they act."""

    name: str
    roles: frozenset[str]

    def has_role(self, *roles: str) -> bool:
        """True if the actor holds any of ``roles``."""
        return bool(self.roles.intersection(roles))

    def may(self, action: Action) -> bool:
        """True if the permission matrix lets the actor take ``action``."""
        return allowed(self.roles, action)

    def require(self, action: Action) -> None:
        """Raise ``PermissionDenied`` naming the missing permission unless the actor may take ``action``."""
        if not self.may(action):
            held = ", ".join(sorted(self.roles)) or "none"
            raise PermissionDenied(
                f"user '{self.name}' lacks permission {action.value}: needs role {' or '.join(roles_for(action))} "
                f"(has {held})", field="user",
            )


_acting: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("conveyor_actor", default=None)


@contextlib.contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    """Run the block (and threads started from its context) as ``actor``."""
    token = _acting.set(actor)
    try:
        yield actor
    finally:
        _acting.reset(token)


def request_actor() -> Actor | None:
    """The actor set by ``acting_as`` around this call, if any."""
    return _acting.get()


class ActingActor:
    """A service attribute: the request's actor inside ``acting_as``, else the one it was built with."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_default_{name}"

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return _acting.get() or getattr(instance, self.slot)

    def __set__(self, instance: Any, value: Actor) -> None:
        setattr(instance, self.slot, value)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def current_actor(settings: Settings, stored: Callable[[str, str], Actor | None] | None = None) -> Actor:
    """The actor the settings name: ``user`` (default: the login name).

    Args:
        stored: looks a user up in the metadata store (``IdentityService.find_actor``): a
            stored user acts with their global roles and those granted in ``settings.project``;
            anyone else with the configured ``roles`` (else ``default_roles``).
    """
    name = settings.user or _login_name()
    found = stored(name, settings.project) if stored is not None else None
    if found is not None:
        return found
    return Actor(name=name, roles=frozenset(settings.roles.get(name, settings.default_roles)))
