"""The one exception hierarchy of Conveyor.

Every error a user can see is a ``ConveyorError`` with a stable ``code``, a one-line
``message`` naming the object or field and the problem, and an optional ``field``.
Faces map them once: the CLI to an exit code, the server to an HTTP status.

    ConveyorError            unexpected (exit 1, HTTP 500)
    ├── ValidationError      bad input (exit 2, HTTP 422); also a ValueError
    ├── NotFound             no such object (exit 3, HTTP 404)
    ├── Conflict             exists already, stale version, duplicate key (exit 4, HTTP 409)
    ├── Unauthenticated      no valid API token (exit 5, HTTP 401)
    ├── PermissionDenied     a role forbids it (exit 5, HTTP 403)
    ├── IntegrityError       stored data fails its checksum (exit 6, HTTP 500)
    └── Unavailable          a database or service is unreachable (exit 7, HTTP 503)
"""

from __future__ import annotations


class ConveyorError(Exception):
    """Base of every Conveyor error."""

    code = "internal"
    exit_code = 1
    http_status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str | None]:
        """The JSON body the server answers with."""
        return {"code": self.code, "message": self.message, "field": self.field}


class ValidationError(ConveyorError, ValueError):
    """The input is malformed or out of range."""

    code = "invalid"
    exit_code = 2
    http_status = 422


class NotFound(ConveyorError, LookupError):
    """The named object does not exist."""

    code = "not_found"
    exit_code = 3
    http_status = 404


class Conflict(ConveyorError):
    """The object exists already, or the change races with another one."""

    code = "conflict"
    exit_code = 4
    http_status = 409


class Unauthenticated(ConveyorError):
    """The request carries no API token, or one that is unknown, expired or revoked."""

    code = "unauthenticated"
    exit_code = 5
    http_status = 401


class PermissionDenied(ConveyorError):
    """The caller's role does not allow the action."""

    code = "permission_denied"
    exit_code = 5
    http_status = 403


class IntegrityError(ConveyorError):
    """Stored data does not match its recorded checksum."""

    code = "integrity"
    exit_code = 6
    http_status = 500


class Unavailable(ConveyorError):
    """A database, store or service cannot be reached."""

    code = "unavailable"
    exit_code = 7
    http_status = 503
