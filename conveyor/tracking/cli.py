"""``conveyor experiments`` and ``conveyor runs``: thin over the tracking service."""

from __future__ import annotations

from typing import Annotated

import typer

from conveyor.cli_support import JsonFlag, console, print_frame, print_json, workspace

experiments_app = typer.Typer(help="Experiments: named groups of runs.", no_args_is_help=True)
runs_app = typer.Typer(help="Runs: list, show, compare, delete.", no_args_is_help=True)


@experiments_app.command("list")
def list_experiments(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List experiments."""
    found = workspace(ctx).tracking.list_experiments()
    if as_json:
        print_json([e.model_dump() for e in found])
        return
    import pandas as pd

    frame = pd.DataFrame([e.model_dump() for e in found], columns=["id", "name", "description", "created_at"])
    frame["created_at"] = pd.to_datetime(frame["created_at"], unit="ms", utc=True)
    print_frame(frame, "Experiments")


@experiments_app.command("create")
def create_experiment(
    ctx: typer.Context, name: str, description: Annotated[str | None, typer.Option(help="What it is for.")] = None
) -> None:
    """Create an experiment."""
    experiment = workspace(ctx).tracking.create_experiment(name, description)
    console.print(f"created experiment [bold]{experiment.name}[/] ({experiment.id})")


@runs_app.command("list")
def list_runs(
    ctx: typer.Context,
    experiment: Annotated[list[str], typer.Option("--experiment", "-e", help="Experiment name (repeatable).")] = ["Default"],  # noqa: B006
    filter: Annotated[str | None, typer.Option("--filter", "-f", help="e.g. \"metrics.auc > 0.9 and params.model = 'lgbm'\"")] = None,
    order_by: Annotated[list[str], typer.Option("--order-by", "-o", help="e.g. 'metrics.auc DESC' (repeatable).")] = [],  # noqa: B006
    max_results: Annotated[int, typer.Option("--max-results", "-n")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """List and search runs."""
    frame = workspace(ctx).tracking.search_runs(experiment, filter, order_by, max_results)
    if as_json:
        print_json(frame)
        return
    shown = frame.drop(columns=["experiment_id", "parent_id", "end_time"], errors="ignore")
    shown = shown[[c for c in shown.columns if not c.startswith("tags.conveyor.")]]
    print_frame(shown, f"Runs of {', '.join(experiment)} ({len(frame)})")


@runs_app.command("show")
def show_run(ctx: typer.Context, run_id: str, as_json: JsonFlag = False) -> None:
    """Show one run: info, params, metrics, tags, artifacts, datasets."""
    run = workspace(ctx).tracking.get_run(run_id)
    if as_json:
        print_json(run.model_dump(mode="json"))
        return
    import pandas as pd

    info = run.info.model_dump(mode="json")
    print_frame(pd.DataFrame({"value": info}), f"Run {run_id}", index=True)
    for title, values in (("Params", run.params), ("Metrics", run.metrics), ("Tags", run.tags)):
        if values:
            print_frame(pd.DataFrame({"value": values}), title, index=True)
    if run.artifacts:
        print_frame(pd.DataFrame([a.model_dump() for a in run.artifacts]), "Artifacts")
    if run.inputs:
        print_frame(pd.DataFrame([i.model_dump(exclude={"data_schema"}) for i in run.inputs]), "Datasets")


@runs_app.command("compare")
def compare_runs(ctx: typer.Context, run_ids: list[str], as_json: JsonFlag = False) -> None:
    """Compare runs side by side (rows that differ first)."""
    frame = workspace(ctx).tracking.compare_runs(run_ids)
    if as_json:
        print_json({column: frame[column].to_dict() for column in frame.columns})
        return
    print_frame(frame, "Comparison", index=True)


@runs_app.command("delete")
def delete_run(ctx: typer.Context, run_id: str) -> None:
    """Delete a run (hidden from listings; its records are kept)."""
    workspace(ctx).tracking.delete_run(run_id)
    console.print(f"deleted run {run_id}")
