"""Governance over HTTP (``/api/v1``): the tamper-evident audit log and its verification.

Users and API tokens will be served here too, under ``/users`` and ``/tokens`` (see the
section at the end of this module)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from conveyor.governance.audit import AuditLog
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


# users and tokens --------------------------------------------------------------------------
# Routes over the workspace's identity service (users, roles, API tokens) go here: their own
# Endpoint table (``IDENTITY_ENDPOINTS``) added to ``router`` like the audit log's above, and
# their remote client next to ``RemoteAudit`` in ``conveyor/governance/remote.py``.
