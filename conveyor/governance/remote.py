"""Governance of a remote workspace: the audit log, users and tokens over the server's API."""

from __future__ import annotations

from datetime import timedelta

from conveyor.errors import NotFound
from conveyor.governance.api import AUDIT_ENDPOINTS, IDENTITY_ENDPOINTS
from conveyor.governance.audit import AuditLog
from conveyor.governance.schemas import TokenInfo, User
from conveyor.governance.users import IdentityService
from conveyor.server.client import RemoteService


class RemoteAudit(RemoteService):
    """``AuditLog`` reads over HTTP (only the server writes to the log)."""

    service_type = AuditLog
    prefix = ""
    endpoints = AUDIT_ENDPOINTS


class RemoteIdentity(RemoteService):
    """``IdentityService`` over HTTP: users, projects, grants and tokens (the server authenticates)."""

    service_type = IdentityService
    prefix = ""
    endpoints = IDENTITY_ENDPOINTS

    def find_user(self, name: str) -> User | None:
        """A user, or ``None``."""
        try:
            return self.get_user(name)
        except NotFound:
            return None

    def create_token(self, user: str | None = None, name: str = "", expires_in: timedelta | None = None) -> tuple[str, TokenInfo]:
        """A new token of ``user`` (default: the signed-in user); its plaintext is returned this once."""
        if user is not None:
            return self.call_route("create_token", user, name, expires_in)
        seconds = None if expires_in is None else int(expires_in.total_seconds())
        body = self.client.request("POST", "/tokens", json={"name": name, "expires_in_seconds": seconds}).json()
        return body["token"], TokenInfo.model_validate(body["info"])

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        """The tokens of ``user`` (default: the signed-in user)."""
        if user is not None:
            return self.call_route("list_tokens", user)
        return [TokenInfo.model_validate(item) for item in self.client.request("GET", "/tokens").json()]

    def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke a token by id."""
        return TokenInfo.model_validate(self.client.request("DELETE", f"/tokens/{token_id}").json())
