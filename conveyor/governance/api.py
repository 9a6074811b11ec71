"""Governance over HTTP (``/api/v1``): the tamper-evident audit log and its verification,
users, projects and their role grants, and API tokens."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from conveyor.governance.audit import AuditLog
from conveyor.governance.schemas import TokenInfo
from conveyor.governance.users import IdentityService
from conveyor.server.endpoints import Endpoint, add_service_routes

AUDIT_ENDPOINTS = (
    Endpoint("list_entries", "GET", "/audit/entries"),
    Endpoint("verify", "GET", "/audit/verification"),
)
"""The audit log is served as it is: entries newest first, a page at a time (``before`` the last
``seq`` of the previous page), filtered by object (``entity``), ``action`` or ``actor``; and
the verification of the whole chain (``ok`` false, with the problems, if it was tampered with)."""


def audit(request: Request) -> AuditLog:
    """The audit log of the server's workspace."""
    return request.app.state.workspace.audit


router = APIRouter(tags=["governance"])
add_service_routes(router, AuditLog, audit, AUDIT_ENDPOINTS)


# users, projects and API tokens ----------------------------------------------------------


def identity(request: Request) -> IdentityService:
    """The identity service of the server's workspace."""
    return request.app.state.workspace.identity


IDENTITY_ENDPOINTS = (
    Endpoint("create_user", "POST", "/users", 201),
    Endpoint("list_users", "GET", "/users"),
    Endpoint("get_user", "GET", "/users/{name}"),
    Endpoint("set_roles", "PUT", "/users/{name}/roles"),
    Endpoint("disable_user", "POST", "/users/{name}/disable"),
    Endpoint("create_project", "POST", "/projects", 201),
    Endpoint("list_projects", "GET", "/projects"),
    Endpoint("grant", "PUT", "/projects/{project}/grants"),
    Endpoint("revoke_grant", "DELETE", "/projects/{project}/grants"),
    Endpoint("list_grants", "GET", "/grants"),
    Endpoint("create_token", "POST", "/users/{user}/tokens", 201),
    Endpoint("list_tokens", "GET", "/users/{user}/tokens"),
)
"""Managing users, projects and grants: ``users.admin`` (the first user may be created by anyone)."""



class Me(BaseModel):
    """Who the request's token signs in as, and the roles they act with."""

    name: str
    roles: list[str]


@router.get("/users/me", response_model=Me, summary="The signed-in user")
def me(request: Request) -> Me:
    """The user the token belongs to and their roles in the request's project; any signed-in user."""
    actor = identity(request).actor
    return Me(name=actor.name, roles=sorted(actor.roles))


class TokenRequest(BaseModel):
    """A new token of the signed-in user."""

    name: str = Field(default="", max_length=128)
    expires_in_seconds: int | None = Field(default=None, gt=0, description="Valid this long; null: until revoked.")


class NewToken(BaseModel):
    """A token's plaintext, shown this once, and its description."""

    token: str
    info: TokenInfo


@router.post("/tokens", response_model=NewToken, status_code=201, summary="Create an API token of your own")
def create_token(request: Request, body: TokenRequest) -> NewToken:
    """A new token of the signed-in user; only its hash is stored, so copy it now."""
    expires = None if body.expires_in_seconds is None else timedelta(seconds=body.expires_in_seconds)
    token, info = identity(request).create_token(None, body.name, expires)
    return NewToken(token=token, info=info)


@router.get("/tokens", response_model=list[TokenInfo], summary="Your API tokens")
def list_tokens(request: Request) -> list[TokenInfo]:
    """The signed-in user's tokens, revoked and expired ones too; never a secret."""
    return identity(request).list_tokens(None)


@router.delete("/tokens/{token_id}", response_model=TokenInfo, summary="Revoke an API token")
def revoke_token(request: Request, token_id: str) -> TokenInfo:
    """Revoke one of your tokens (anyone's with ``users.admin``)."""
    return identity(request).revoke_token(token_id)


add_service_routes(router, IdentityService, identity, IDENTITY_ENDPOINTS)  # after /users/me, which {name} would shadow
