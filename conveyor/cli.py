"""The ``conveyor`` command: root options, sub-commands, and the one error mapping."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from conveyor.automation.cli import agent_app, jobs_app, policies_app
from conveyor.core.config import CONFIG_FILE, default_config_text, load_settings
from conveyor.errors import ConveyorError
from conveyor.features.cli import features_app
from conveyor.governance.cli import audit_app, projects_app, tokens_app, users_app
from conveyor.monitoring.cli import monitor_app
from conveyor.pipelines.cli import pipeline_app, reproduce
from conveyor.registry.cli import models_app
from conveyor.server.cli import server_app
from conveyor.serving.cli import score, serve
from conveyor.serving.deployments.cli import deploy_app
from conveyor.serving.feedback_cli import feedback_app
from conveyor.tracking.cli import experiments_app, runs_app

app = typer.Typer(
    name="conveyor",
    help="Conveyor: from raw data to a monitored, automatically retrained production model.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(experiments_app, name="experiments")
app.add_typer(runs_app, name="runs")
app.add_typer(models_app, name="models")
app.add_typer(audit_app, name="audit")
app.add_typer(users_app, name="users")
app.add_typer(projects_app, name="projects")
app.add_typer(tokens_app, name="tokens")
app.add_typer(features_app, name="features")
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(feedback_app, name="feedback")
app.add_typer(deploy_app, name="deploy")
app.add_typer(monitor_app, name="monitor")
app.add_typer(policies_app, name="policies")
app.add_typer(agent_app, name="agent")
app.add_typer(jobs_app, name="jobs")
app.add_typer(server_app, name="server")
runs_app.command("reproduce")(reproduce)
app.command("serve")(serve)
app.command("score")(score)

errors = Console(stderr=True)


@app.callback()
def root(
    ctx: typer.Context,
    workspace: Annotated[Path | None, typer.Option("--workspace", "-w", help="Workspace folder (default: found from here).")] = None,
    metadata_url: Annotated[str | None, typer.Option("--metadata-url", help="Overrides metadata.url.")] = None,
    artifacts_url: Annotated[str | None, typer.Option("--artifacts-url", help="Overrides artifacts.url.")] = None,
) -> None:
    """Settings come from conveyor.yaml, then CONVEYOR_* variables, then these flags."""
    ctx.obj = {"workspace": workspace, "metadata_url": metadata_url, "artifacts_url": artifacts_url}


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Folder to make a workspace.")] = Path("."),
    force: Annotated[bool, typer.Option(help="Overwrite an existing conveyor.yaml.")] = False,
) -> None:
    """Write conveyor.yaml with the embedded defaults and create the workspace's stores."""
    path.mkdir(parents=True, exist_ok=True)
    target = path / CONFIG_FILE
    if target.exists() and not force:
        raise ConveyorError(f"{target} exists already (use --force to overwrite)")
    target.write_text(default_config_text())
    settings = load_settings(path)
    from conveyor.core.workspace import Workspace

    Workspace(settings).metadata.dispose()
    Console().print(f"initialised workspace [bold]{settings.workspace}[/] (metadata: {settings.metadata_url})")


def main() -> None:
    """Entry point: a Conveyor error is one red line on stderr and its exit code."""
    try:
        app()
    except ConveyorError as error:
        errors.print(f"[red]error:[/] {escape(error.message)}", highlight=False, soft_wrap=True, markup=True)
        sys.exit(error.exit_code)
