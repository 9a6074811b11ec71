"""Governance of a remote workspace: the audit log over the server's API."""

from __future__ import annotations

from conveyor.governance.api import AUDIT_ENDPOINTS
from conveyor.governance.audit import AuditLog
from conveyor.server.client import RemoteService


class RemoteAudit(RemoteService):
    """``AuditLog`` reads over HTTP (only the server writes to the log)."""

    service_type = AuditLog
    prefix = ""
    endpoints = AUDIT_ENDPOINTS
