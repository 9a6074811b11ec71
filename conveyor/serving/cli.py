"""``conveyor serve``: start the model server with uvicorn."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from conveyor.cli_support import workspace
from conveyor.errors import ValidationError
from conveyor.serving.endpoint import ModelReference


def serve(
    ctx: typer.Context,
    models: Annotated[list[str] | None, typer.Argument(
        help="NAME@ALIAS (followed as it moves), NAME/VERSION or NAME (its champion); several allowed.")] = None,
    deployment: Annotated[list[str] | None, typer.Option(
        "--deployment", "-d", help="Deployment to serve with its traffic policy (see `conveyor deploy`); repeatable.")] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes (each loads the models).")] = 1,
    log: Annotated[bool, typer.Option("--log/--no-log", help="Write every prediction to the prediction log.")] = True,
) -> None:
    """Serve models over HTTP: POST /v1/models/NAME/predict, /v1/deployments/NAME/predict, /v1/feedback, /metrics."""
    import uvicorn

    from conveyor.serving.app import DEPLOYMENTS_VARIABLE, MODELS_VARIABLE

    if workers < 1:
        raise ValidationError("--workers must be at least 1", field="workers")
    if not models and not deployment:
        raise ValidationError("name a model (NAME@ALIAS) or a --deployment to serve", field="models")
    opened = workspace(ctx)
    for text in models or []:
        opened.registry.resolve(ModelReference.parse(text).uri)
    for name in deployment or []:
        opened.deployments.sync(name)
    settings = opened.settings
    os.environ["CONVEYOR_WORKSPACE"] = str(settings.workspace)
    os.environ["CONVEYOR_METADATA__URL"] = settings.metadata_url
    os.environ["CONVEYOR_ARTIFACTS__URL"] = settings.artifacts_url
    os.environ["CONVEYOR_SERVING__LOG_PREDICTIONS"] = "true" if log else "false"
    os.environ[MODELS_VARIABLE] = ",".join(models or [])
    os.environ[DEPLOYMENTS_VARIABLE] = ",".join(deployment or [])
    uvicorn.run("conveyor.serving.app:app_from_environment", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False)


def score(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="NAME@ALIAS, NAME/VERSION or NAME (its champion).")],
    input: Annotated[Path, typer.Option("--input", "-i", help="Parquet file to score.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Parquet file to write.")],
    chunk_rows: Annotated[int, typer.Option(help="Rows per chunk: memory holds one chunk (per partition on Ray).")] = 100_000,
    executor: Annotated[str, typer.Option(help="local: in this process; ray: partitions in parallel Ray tasks.")] = "local",
    workers: Annotated[int | None, typer.Option(help="Ray tasks at once (--executor ray; default 2).")] = None,
    features_service: Annotated[str | None, typer.Option(
        help="Join each chunk with this feature service point in time (default: the one the version was trained "
             "with, when the input lacks the model's columns).")] = None,
    timestamp_column: Annotated[str, typer.Option(help="The input's event time, for the feature join.")] = "event_timestamp",
) -> None:
    """Score a Parquet file in chunks: the input's other columns, the prediction, class probabilities, the version."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from conveyor.cli_support import console
    from conveyor.serving.batch import score_file

    with Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                  transient=True) as bars:
        task = bars.add_task("scoring", total=None)
        summary = score_file(workspace(ctx), model, input, output, chunk_rows,
                             progress=lambda done, total: bars.update(task, completed=done, total=total),
                             executor=executor, workers=workers, features_service=features_service,
                             timestamp_column=timestamp_column)
    where = f" on ray ({summary.workers} workers)" if summary.executor == "ray" else ""
    console.print(f"scored {summary.rows:,} rows in {summary.chunks} chunk(s) with {summary.model} version "
                  f"{summary.version}{where} → {summary.output}")
