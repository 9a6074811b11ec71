"""What every CLI command shares: the workspace from the root options, JSON or table output."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from conveyor.core.workspace import Workspace, open_workspace

console = Console(width=max(Console().width, 140))

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def workspace(ctx: typer.Context) -> Workspace:
    """The workspace named by the root options (``--workspace``, ``--metadata-url`` ...)."""
    options = (ctx.find_root().obj or {}) if ctx else {}
    overrides: dict[str, Any] = {}
    if options.get("metadata_url"):
        overrides["metadata"] = {"url": options["metadata_url"]}
    if options.get("artifacts_url"):
        overrides["artifacts"] = {"url": options["artifacts_url"]}
    return open_workspace(options.get("workspace"), **overrides)


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.isoformat()
    if value is pd.NaT:
        return None
    return value


def print_json(data: Any) -> None:
    """Machine-readable output on stdout, one JSON document."""
    if isinstance(data, pd.DataFrame):
        data = [{k: _plain(v) for k, v in row.items()} for row in data.to_dict(orient="records")]
    typer.echo(json.dumps(data, default=str, indent=2))


def print_frame(frame: pd.DataFrame, title: str, index: bool = False) -> None:
    """A DataFrame as a Rich table."""
    table = Table(title=title, show_lines=False)
    if index:
        table.add_column("", style="bold")
    for column in frame.columns:
        table.add_column(str(column), overflow="fold", no_wrap=str(column) == "run_id")
    for key, row in frame.iterrows():
        cells = [_cell(v) for v in row.tolist()]
        table.add_row(*([str(key)] if index else []), *cells)
    console.print(table)


def _cell(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str) and len(value) > 19 and value[10:11] == "T" and value[4:5] == "-":
        return value[:19].replace("T", " ")
    return str(value)


def print_records(records: list[dict[str, Any]], title: str, columns: list[str], times: tuple[str, ...] = ()) -> None:
    """Rows of dicts as a table of ``columns``; ``times`` are epoch milliseconds shown as UTC times."""
    frame = pd.DataFrame(records, columns=columns)
    for column in times:
        frame[column] = pd.to_datetime(frame[column], unit="ms", utc=True)
    print_frame(frame, title)
