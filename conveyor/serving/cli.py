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
    models: Annotated[list[str], typer.Argument(help="NAME@ALIAS, NAME/VERSION or NAME (its champion); several allowed.")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes (each loads the models).")] = 1,
) -> None:
    """Serve models over HTTP: POST /v1/models/NAME/predict, /healthz, /readyz, /metrics, /openapi.json."""
    import uvicorn

    if workers < 1:
        raise ValidationError("--workers must be at least 1", field="workers")
    opened = workspace(ctx)
    for text in models:
        opened.registry.resolve(ModelReference.parse(text).uri)
    settings = opened.settings
    os.environ["CONVEYOR_WORKSPACE"] = str(settings.workspace)
    os.environ["CONVEYOR_METADATA__URL"] = settings.metadata_url
    os.environ["CONVEYOR_ARTIFACTS__URL"] = settings.artifacts_url
    os.environ["CONVEYOR_SERVE_MODELS"] = ",".join(models)
    uvicorn.run("conveyor.serving.app:app_from_environment", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False)


def score(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="NAME@ALIAS, NAME/VERSION or NAME (its champion).")],
    input: Annotated[Path, typer.Option("--input", "-i", help="Parquet file to score.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Parquet file to write.")],
    chunk_rows: Annotated[int, typer.Option(help="Rows per chunk: memory holds one chunk.")] = 100_000,
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
        summary = score_file(workspace(ctx).registry, model, input, output, chunk_rows,
                             progress=lambda done, total: bars.update(task, completed=done, total=total))
    console.print(f"scored {summary.rows:,} rows in {summary.chunks} chunk(s) with {summary.model} version "
                  f"{summary.version} → {summary.output}")
