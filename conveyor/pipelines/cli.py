"""``conveyor pipeline`` and ``conveyor runs reproduce``: thin over ``PipelineService``."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from conveyor.cli_support import JsonFlag, console, print_json, workspace
from conveyor.pipelines.outputs import PipelineResult, StepReport
from conveyor.pipelines.spec import STEPS

pipeline_app = typer.Typer(help="Training pipelines: init from a template, check, run.", no_args_is_help=True)

STATUS_STYLE = {"ran": "green", "cached": "cyan", "failed": "red", "skipped": "dim"}


class RichProgress:
    """Draws one bar per step (and per trial or segment) and a line as each step ends."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, Any] = {}

    def step_started(self, step: str, total: int | None = None) -> None:
        """Show the step's bar; a total turns it into a counted bar."""
        if step not in self.tasks:
            self.tasks[step] = self.progress.add_task(step, total=total)
        elif total is not None:
            self.progress.update(self.tasks[step], total=total, completed=0)

    def advanced(self, step: str, done: int, detail: str) -> None:
        """Move the step's bar and show what just finished."""
        self.progress.update(self.tasks[step], completed=done, description=f"{step}: {detail}")

    def step_finished(self, report: StepReport) -> None:
        """Complete the bar and print the step's outcome."""
        task = self.tasks.setdefault(report.step, self.progress.add_task(report.step, total=1))
        self.progress.update(task, total=1, completed=1, visible=False)
        style = STATUS_STYLE[report.status]
        self.progress.console.print(
            f"[{style}]{report.status:>7}[/] [bold]{report.step:<10}[/] {report.seconds:6.1f} s  {report.detail}",
            highlight=False,
        )


def progress_bars() -> Progress:
    """The bars ``RichProgress`` draws on: description, bar, count, elapsed time."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True)


def _summary(result: PipelineResult) -> None:
    console.print(f"pipeline [bold]{result.pipeline}[/]: run {result.run_id}")
    table = Table()
    table.add_column("metric")
    table.add_column("test value", justify="right")
    for name, value in result.metrics.items():
        table.add_row(name, "undefined" if value is None else f"{value:.4f}")
    console.print(table)
    for note in result.notes:
        console.print(f"note: {note}")


@pipeline_app.command("init")
def init(
    template: Annotated[str, typer.Option("--template", "-t", help="credit-scoring, forecasting, anomaly, "
                                          "recommendation or text-classification.")],
    directory: Annotated[Path, typer.Option("--dir", "-d", help="Folder to write pipeline.yaml and data/ into.")] = Path("."),
    force: Annotated[bool, typer.Option(help="Overwrite an existing pipeline.yaml.")] = False,
) -> None:
    """Write a working pipeline and its real data set for one of five use cases."""
    from conveyor.pipelines.templates import write_template

    with console.status(f"writing template {template} and its data"):
        written = write_template(template, directory, force=force)
    for path in written:
        console.print(f"wrote {path}")
    console.print(f"run it: [bold]conveyor pipeline run {directory / 'pipeline.yaml'}[/]")


@pipeline_app.command("templates")
def templates() -> None:
    """List the templates ``init`` can write."""
    from conveyor.pipelines.templates import TEMPLATES

    for name, description in TEMPLATES.items():
        console.print(f"[bold]{name:<20}[/] {description}")


@pipeline_app.command("validate")
def validate(
    path: Annotated[Path, typer.Argument(help="The pipeline YAML file.")],
    set_: Annotated[list[str], typer.Option("--set", help="Override a key: train.params.max_depth=6 (repeatable).")] = [],  # noqa: B006
) -> None:
    """Check a pipeline file against the schema without running it."""
    from conveyor.pipelines.loading import load_pipeline

    pipeline = load_pipeline(path, set_)
    steps = [s for s in STEPS if pipeline.step_config(s) is not None]
    console.print(f"{path}: pipeline [bold]{pipeline.name}[/] ({pipeline.task}) is valid; steps: {', '.join(steps)}")


@pipeline_app.command("run")
def run(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The pipeline YAML file.")],
    set_: Annotated[list[str], typer.Option("--set", help="Override a key: train.params.max_depth=6 (repeatable).")] = [],  # noqa: B006
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Run every step even if its inputs are unchanged.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Run a pipeline as one tracked run; unchanged steps reuse their cached outputs."""
    from conveyor.pipelines.service import PipelineService

    service = PipelineService(workspace(ctx))
    if as_json:
        print_json(asdict(service.run(path, set_, use_cache=not no_cache)))
        return
    with progress_bars() as bars:
        result = service.run(path, set_, use_cache=not no_cache, progress=RichProgress(bars))
    _summary(result)


def reproduce(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The pipeline run to re-execute.")],
    as_json: JsonFlag = False,
) -> None:
    """Re-execute a pipeline run from its records (dataset snapshot, params, seed) and compare."""
    from conveyor.pipelines.service import PipelineService

    service = PipelineService(workspace(ctx))
    if as_json:
        outcome = service.reproduce(run_id)
    else:
        with progress_bars() as bars:
            outcome = service.reproduce(run_id, RichProgress(bars))
    if as_json:
        print_json({"original_run": run_id, "run_id": outcome.result.run_id, "metrics_match": outcome.metrics_match,
                    "identical_model": outcome.identical_model, "metrics": outcome.metrics, "warnings": outcome.warnings})
        return
    for warning in outcome.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    table = Table(title=f"run {run_id} reproduced as {outcome.result.run_id}")
    for column in ("metric", "original", "reproduced"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name, (before, after) in outcome.metrics.items():
        table.add_row(name, "-" if before is None else f"{before:.6f}", "-" if after is None else f"{after:.6f}")
    console.print(table)
    verdict = "[green]metrics match[/]" if outcome.metrics_match else "[red]metrics differ[/]"
    files = "model files byte-identical" if outcome.identical_model else "model files differ"
    console.print(f"{verdict}; {files}")
    if not outcome.metrics_match:
        raise typer.Exit(1)
