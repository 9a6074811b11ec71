"""The platform server: REST API, authentication and the web UI over one workspace."""

from conveyor.server.app import create_app

__all__ = ["create_app"]
