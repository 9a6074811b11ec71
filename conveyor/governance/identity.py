"""Who is acting, and what their roles let them do.

Identities come from configuration for now: ``CONVEYOR_USER`` (or ``user:`` in
``conveyor.yaml``) names the actor, ``roles:`` maps users to roles. The server
replaces this with API tokens, behind the same ``Actor``.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from conveyor.core.config import Settings
from conveyor.errors import PermissionDenied

SYSTEM_ACTOR = "conveyor"


@dataclass(frozen=True)
class Actor:
    """A user and their roles."""

    name: str
    roles: frozenset[str]

    def has_role(self, *roles: str) -> bool:
        """True if the actor holds any of ``roles``."""
        return bool(self.roles.intersection(roles))

    def require_role(self, action: str, *roles: str) -> None:
        """Raise ``PermissionDenied`` unless the actor holds one of ``roles``."""
        if not self.has_role(*roles):
            held = ", ".join(sorted(self.roles)) or "none"
            raise PermissionDenied(
                f"user '{self.name}' may not {action}: needs role {' or '.join(roles)} (has {held})", field="user"
            )


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def current_actor(settings: Settings) -> Actor:
    """The actor the settings name: ``user`` (default: the login name) with its configured roles."""
    name = settings.user or _login_name()
    return Actor(name=name, roles=frozenset(settings.roles.get(name, settings.default_roles)))
