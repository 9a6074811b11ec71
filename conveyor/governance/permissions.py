"""The permission matrix: which role may take which action, in one place.

Services guard their public methods with ``@requires(Action.X)``; the server reads
the same decoration to document each route's permission, and ``docs/permissions.md``
is rendered from ``MATRIX``. Reading is open to every role a user holds in a project
(``viewer`` included); a user with no role there may do nothing.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from typing import Any, TypeVar

ROLES: tuple[str, ...] = ("platform-admin", "data-scientist", "ml-engineer", "data-engineer", "validator", "viewer")
"""Every role, in the order the docs show them."""


class Action(enum.StrEnum):
    """A permission: ``area.verb``."""

    EXPERIMENTS_READ = "experiments.read"
    EXPERIMENTS_WRITE = "experiments.write"
    MODELS_READ = "models.read"
    MODELS_WRITE = "models.write"
    MODELS_ALIAS = "models.alias"
    MODELS_SET_TIER = "models.set_tier"
    MODELS_APPROVE = "models.approve"
    FEATURES_READ = "features.read"
    FEATURES_APPLY = "features.apply"
    FEATURES_MATERIALIZE = "features.materialize"
    PIPELINES_READ = "pipelines.read"
    PIPELINES_RUN = "pipelines.run"
    DEPLOYMENTS_READ = "deployments.read"
    DEPLOYMENTS_WRITE = "deployments.write"
    MONITORING_READ = "monitoring.read"
    MONITORING_WRITE = "monitoring.write"
    AUTOMATION_READ = "automation.read"
    AUTOMATION_WRITE = "automation.write"
    AUDIT_READ = "audit.read"
    USERS_ADMIN = "users.admin"


_EVERYONE = frozenset(ROLES)
_BUILDERS = frozenset({"platform-admin", "data-scientist", "ml-engineer"})

MATRIX: dict[Action, frozenset[str]] = {
    Action.EXPERIMENTS_READ: _EVERYONE,
    Action.EXPERIMENTS_WRITE: _BUILDERS,
    Action.MODELS_READ: _EVERYONE,
    Action.MODELS_WRITE: _BUILDERS,
    Action.MODELS_ALIAS: _BUILDERS,
    Action.MODELS_SET_TIER: frozenset({"platform-admin", "validator"}),
    Action.MODELS_APPROVE: frozenset({"validator"}),
    Action.FEATURES_READ: _EVERYONE,
    Action.FEATURES_APPLY: _BUILDERS | {"data-engineer"},
    Action.FEATURES_MATERIALIZE: frozenset({"platform-admin", "ml-engineer", "data-engineer"}),
    Action.PIPELINES_READ: _EVERYONE,
    Action.PIPELINES_RUN: _BUILDERS,
    Action.DEPLOYMENTS_READ: _EVERYONE,
    Action.DEPLOYMENTS_WRITE: frozenset({"platform-admin", "ml-engineer"}),
    Action.MONITORING_READ: _EVERYONE,
    Action.MONITORING_WRITE: _BUILDERS,
    Action.AUTOMATION_READ: _EVERYONE,
    Action.AUTOMATION_WRITE: frozenset({"platform-admin", "ml-engineer"}),
    Action.AUDIT_READ: _EVERYONE,
    Action.USERS_ADMIN: frozenset({"platform-admin"}),
}
"""Action -> the roles allowed to take it."""


def allowed(roles: frozenset[str] | set[str], action: Action) -> bool:
    """True if any of ``roles`` may take ``action``."""
    return bool(MATRIX[action].intersection(roles))


def roles_for(action: Action) -> list[str]:
    """The roles allowed ``action``, in the docs' order."""
    return [role for role in ROLES if role in MATRIX[action]]


F = TypeVar("F", bound=Callable[..., Any])


def requires(action: Action) -> Callable[[F], F]:
    """Guard a service method: the acting user (``self.actor``) must hold a role allowed
    ``action``, checked before anything else so a refusal never depends on the input.

    The action is kept on the function (``__conveyor_action__``) for the server's docs."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
            self.actor.require(action)
            return method(self, *args, **kwargs)

        guarded.__conveyor_action__ = action  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorate


def action_of(function: Callable[..., Any]) -> Action | None:
    """The action a service method requires, if it is guarded."""
    return getattr(function, "__conveyor_action__", None)


def render_markdown() -> str:
    """The matrix as a Markdown table (``docs/permissions.md``)."""
    header = "| action | " + " | ".join(ROLES) + " |"
    rule = "|---|" + "---|" * len(ROLES)
    lines = [header, rule]
    for action in Action:
        marks = " | ".join("yes" if role in MATRIX[action] else "" for role in ROLES)
        lines.append(f"| `{action.value}` | {marks} |")
    return "\n".join(lines) + "\n"
