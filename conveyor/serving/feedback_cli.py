"""``conveyor feedback``: thin over ``FeedbackService``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from conveyor.cli_support import console, workspace

feedback_app = typer.Typer(help="Ground truth for logged predictions, by request id.", no_args_is_help=True)


@feedback_app.command("ingest")
def ingest(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV or Parquet file of labels.")],
    request_id_column: Annotated[str, typer.Option(help="Column of request ids.")] = "request_id",
    label_column: Annotated[str, typer.Option(help="Column of true labels.")] = "label",
    row_column: Annotated[str, typer.Option(help="Column of row positions in the request (absent: row 0).")] = "row",
) -> None:
    """Record the true labels of earlier predictions; the newest label of a row wins."""
    from conveyor.serving.feedback import FeedbackService

    recorded = FeedbackService(workspace(ctx).metadata).ingest_file(file, request_id_column, label_column, row_column)
    console.print(f"recorded {recorded} label(s) from {file}", highlight=False, soft_wrap=True)
