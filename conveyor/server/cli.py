"""``conveyor server start``: the platform server (API and web UI) with uvicorn."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console

from conveyor.cli_support import workspace
from conveyor.errors import ValidationError
from conveyor.server.app import AUTH_ENV

server_app = typer.Typer(help="The platform server: REST API under /api/v1 and the web UI.", no_args_is_help=True)


@server_app.command("start")
def start(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 for every one).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    workers: Annotated[int, typer.Option(help="Server processes.")] = 1,
    auth: Annotated[bool, typer.Option("--auth/--no-auth", help="Require an API token on every route but /healthz.")] = True,
) -> None:
    """Serve the workspace's stores to the team: API at /api/v1 (OpenAPI at /openapi.json), UI at /."""
    import uvicorn

    if workers < 1:
        raise ValidationError("--workers must be at least 1", field="workers")
    if not 0 < port < 65536:
        raise ValidationError(f"--port must be in 1..65535, got {port}", field="port")
    settings = workspace(ctx).settings
    os.environ["CONVEYOR_WORKSPACE"] = str(settings.workspace)
    os.environ["CONVEYOR_METADATA__URL"] = settings.metadata_url
    os.environ["CONVEYOR_ARTIFACTS__URL"] = settings.artifacts_url
    os.environ[AUTH_ENV] = "1" if auth else "0"
    Console().print(f"Conveyor server on [bold]http://{host}:{port}[/] (metadata: {settings.metadata_url}; "
                    f"auth {'on' if auth else 'off'})")
    uvicorn.run("conveyor.server.app:app_from_environment", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False)
