"""Pydantic models of identities: users, their API tokens, projects and grants.

A token's secret never appears here: ``TokenInfo`` describes a token by its id, label
and first characters; the plaintext is returned once, by ``create_token``.
"""

from __future__ import annotations

from pydantic import BaseModel


class User(BaseModel):
    """Someone who acts: their global roles (held in every project) and whether they may sign in."""

    name: str
    display_name: str | None = None
    roles: list[str]
    disabled: bool = False
    created_at: int
    created_by: str


class TokenInfo(BaseModel):
    """An API token as people see it: never its secret or hash."""

    id: str
    user: str
    name: str
    prefix: str
    created_at: int
    expires_at: int | None = None
    revoked_at: int | None = None
    last_used_at: int | None = None

    def active(self, now_ms: int) -> bool:
        """True unless the token is revoked or expired at ``now_ms``."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now_ms)


class Project(BaseModel):
    """A space in which users are granted roles beyond their global ones."""

    name: str
    description: str = ""
    created_at: int
    created_by: str


class Grant(BaseModel):
    """A role a user holds in one project."""

    project: str
    user: str
    role: str
    created_at: int
    created_by: str
