"""One run (params, metrics with their histories, artifacts with previews, datasets, code
and environment), runs compared side by side, and artifact downloads."""

from __future__ import annotations

import contextlib
import io
import json
import mimetypes
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from conveyor.errors import ValidationError
from conveyor.tracking import RunData
from conveyor.ui import charts
from conveyor.ui.rendering import render
from conveyor.ui.routing import page_router, workspace_of

MAX_CHARTS = 12
MAX_COMPARED = 12
PREVIEW_BYTES = 64 * 1024
PREVIEW_LINES = 40
TABLE_ROWS = 10
MAX_PARQUET_PREVIEW = 20_000_000
ENVIRONMENT_FILE = "_conveyor/environment.txt"
GIT_DIFF_FILE = "_conveyor/git.diff"
IMAGES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg"}
TEXT = {".txt", ".log", ".md", ".yaml", ".yml", ".py", ".diff", ".cfg", ".toml", ".ini", ".sql", ".sh", ".r", ".html"}
TABLES = {".csv", ".tsv"}


def preview_kind(path: str, kind: str) -> str | None:
    """How the UI previews an artifact: ``image``, ``text``, ``json``, ``csv``, ``parquet`` or not at all."""
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in IMAGES:
        return "image"
    if suffix == ".json":
        return "json"
    if suffix in TABLES:
        return "csv"
    if suffix == ".parquet" or kind == "table":
        return "parquet"
    if suffix in TEXT or kind in ("environment", "git-diff"):
        return "text"
    return None


def _head(chunks: Iterator[bytes], limit: int = PREVIEW_BYTES) -> tuple[bytes, bool]:
    """The first ``limit`` bytes of a blob's stream (closed after) and whether there was more."""
    data = b""
    with contextlib.closing(chunks):  # type: ignore[type-var]
        for chunk in chunks:
            data += chunk
            if len(data) > limit:
                return data[:limit], True
    return data, False


def preview(request: Request, run_id: str, path: str) -> dict[str, Any]:
    """What the preview of an artifact shows: lines of text, a JSON document, or table rows."""
    tracking = workspace_of(request).tracking
    artifact = tracking.get_artifact(run_id, path)
    kind = preview_kind(artifact.path, artifact.kind)
    if kind == "parquet":
        if artifact.size > MAX_PARQUET_PREVIEW:
            return {"kind": "none", "reason": "too large to preview"}
        import pyarrow.parquet as pq

        table = pq.ParquetFile(io.BytesIO(tracking.read_artifact(run_id, path)))
        frame = next(table.iter_batches(batch_size=TABLE_ROWS)).to_pandas() if table.metadata.num_rows else pd.DataFrame()
        return {"kind": "table", "columns": list(frame.columns), "rows": frame.astype(str).values.tolist(),
                "total": table.metadata.num_rows}
    if kind not in ("text", "json", "csv"):
        return {"kind": "none", "reason": "no preview for this file type"}
    data, truncated = _head(tracking.blob_chunks(artifact.sha256))
    text = data.decode("utf-8", errors="replace")
    if kind == "json" and not truncated:
        try:
            return {"kind": "text", "text": json.dumps(json.loads(text), indent=2)[:PREVIEW_BYTES], "truncated": False}
        except ValueError:
            pass
    lines = text.splitlines()
    if kind == "csv":
        import csv

        rows = list(csv.reader(lines[: TABLE_ROWS + 1], delimiter="\t" if path.endswith(".tsv") else ","))
        return {"kind": "table", "columns": rows[0] if rows else [], "rows": rows[1:], "total": None}
    return {"kind": "text", "text": "\n".join(lines[:PREVIEW_LINES]),
            "truncated": truncated or len(lines) > PREVIEW_LINES}


def metric_charts(request: Request, run: RunData) -> list[dict[str, Any]]:
    """A line chart per metric logged at more than one step (at most ``MAX_CHARTS``)."""
    tracking = workspace_of(request).tracking
    found = []
    for key in sorted(run.metrics)[: MAX_CHARTS * 2]:
        history = tracking.get_metric_history(run.info.id, key)
        if len(history) > 1:
            found.append({"key": key, "figure": charts.lines({key: (history["step"], history["value"])}, x_title="step")})
        if len(found) == MAX_CHARTS:
            break
    return found


def environment_text(request: Request, run: RunData) -> str | None:
    """The captured environment (packages, interpreter), if the run has it."""
    if not any(a.path == ENVIRONMENT_FILE for a in run.artifacts):
        return None
    data, _ = _head(workspace_of(request).tracking.blob_chunks(
        next(a.sha256 for a in run.artifacts if a.path == ENVIRONMENT_FILE)))
    return data.decode("utf-8", errors="replace")


def run_ids(values: list[str]) -> list[str]:
    """Run ids from ``runs=a,b`` or ``runs=a&runs=b``, in order, once each."""
    ids = list(dict.fromkeys(part.strip() for value in values for part in value.split(",") if part.strip()))
    if not ids:
        raise ValidationError("choose at least one run to compare (?runs=ID,ID)", field="runs")
    if len(ids) > MAX_COMPARED:
        raise ValidationError(f"compare at most {MAX_COMPARED} runs at once, got {len(ids)}", field="runs")
    return ids


def labels(frame: pd.DataFrame) -> dict[str, str]:
    """A readable, unique label per compared run: its name, or name and id when names repeat."""
    names = frame.loc["run_name"].to_dict()
    repeated = {name for name in names.values() if list(names.values()).count(name) > 1}
    return {run_id: f"{name} ({run_id[:6]})" if name in repeated else str(name) for run_id, name in names.items()}


def comparison_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of the side-by-side table: params, then metrics, then tags; ``differs`` marks disagreement."""
    rows = []
    for prefix in ("params.", "metrics.", "tags."):
        for key in [k for k in frame.index if k.startswith(prefix)]:
            values = [None if pd.isna(v) else v for v in frame.loc[key].tolist()]
            rows.append({"key": key, "kind": prefix[:-1], "values": values,
                         "differs": len({json.dumps(v, default=str) for v in values}) > 1})
    return rows


def run_colors(names: dict[str, str]) -> dict[str, str]:
    """One colour per compared run, the same in every chart."""
    return {name: charts.PALETTE[i % len(charts.PALETTE)] for i, name in enumerate(names.values())}


def overlay_charts(request: Request, frame: pd.DataFrame, names: dict[str, str],
                   colors: dict[str, str]) -> list[dict[str, Any]]:
    """Per metric: the runs' histories overlaid, or a dot per run when each has a single value
    (histories first)."""
    tracking = workspace_of(request).tracking
    found = []
    for key in [k for k in frame.index if k.startswith("metrics.")][:MAX_CHARTS]:
        metric = key.removeprefix("metrics.")
        series = {}
        for run_id in frame.columns:
            if pd.isna(frame.at[key, run_id]):
                continue
            history = tracking.get_metric_history(run_id, metric)
            series[names[run_id]] = (history["step"].tolist(), history["value"].tolist())
        history = any(len(x) > 1 for x, _ in series.values())
        if history:
            figure = charts.lines(series, x_title="step", colors=colors)
            figure["layout"].update(showlegend=False, margin={**figure["layout"]["margin"], "t": 12})  # one legend above
        else:
            figure = charts.dots(list(series), [y[-1] for _, y in series.values()], colors)
        found.append({"key": metric, "figure": figure, "history": history})
    return sorted(found, key=lambda chart: not chart["history"])


def _dimension(label: str, values: list[Any]) -> dict[str, Any] | None:
    numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
    present = [v for v in values if v is not None and not (isinstance(v, float) and pd.isna(v))]
    if not present or len({str(v) for v in present}) < 2 and len(present) == len(values):
        return None  # missing, or the same everywhere: an axis that separates nothing
    if numbers.notna().sum() == len(present):
        return {"label": label, "values": numbers.tolist()}
    categories = sorted({str(v) for v in present})
    codes = [categories.index(str(v)) if v is not None else None for v in values]
    return {"label": label, "values": codes, "tickvals": list(range(len(categories))), "ticktext": categories}


def parallel(frame: pd.DataFrame, colors: list[str]) -> dict[str, Any] | None:
    """Parallel coordinates over the params then metrics that differ between the compared runs,
    each run in its colour."""
    dimensions = []
    for key in [k for prefix in ("params.", "metrics.") for k in sorted(frame.index) if k.startswith(prefix)]:
        values = [None if pd.isna(v) else v for v in frame.loc[key].tolist()]
        dimension = _dimension(key.split(".", 1)[1], values)
        if dimension is not None:
            dimensions.append(dimension)
    if len(dimensions) < 2 or len(frame.columns) < 2:
        return None
    return charts.parallel_coordinates(dimensions, colors)


def build_router() -> APIRouter:
    router = page_router()

    @router.get("/runs/{run_id}")
    def run_page(request: Request, run_id: str) -> Response:
        ws = workspace_of(request)
        run = ws.tracking.get_run(run_id)
        experiment = ws.tracking.get_experiment(run.info.experiment_id)
        artifacts = [{"info": a, "preview": preview_kind(a.path, a.kind)} for a in run.artifacts]
        diff = next((a for a in run.artifacts if a.path == GIT_DIFF_FILE), None)
        return render(request, "run.html", section="experiments", run=run, experiment=experiment, artifacts=artifacts,
                      charts=metric_charts(request, run), environment=environment_text(request, run), diff=diff)

    @router.get("/ui/previews/{run_id}/{path:path}")
    def artifact_preview(request: Request, run_id: str, path: str) -> Response:
        return render(request, "_preview.html", run_id=run_id, path=path, preview=preview(request, run_id, path))

    @router.get("/ui/artifacts/{run_id}/{path:path}")
    def artifact_download(request: Request, run_id: str, path: str, inline: bool = False) -> Response:
        tracking = workspace_of(request).tracking
        artifact = tracking.get_artifact(run_id, path)
        chunks = tracking.blob_chunks(artifact.sha256)
        first = next(chunks, b"")  # a missing blob is an error page, not a broken stream
        media = mimetypes.guess_type(artifact.path)[0] or "application/octet-stream"
        shown_inline = inline and preview_kind(artifact.path, artifact.kind) == "image"
        name = PurePosixPath(artifact.path).name.replace('"', "")
        headers = {
            "Content-Disposition": f'{"inline" if shown_inline else "attachment"}; filename="{name}"',
            "Content-Length": str(artifact.size), "X-Content-Type-Options": "nosniff",
            # Whatever a logged file holds, it runs no script on this origin.
            "Content-Security-Policy": "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox",
            "Cache-Control": "private, max-age=31536000, immutable",  # artifacts never change once logged
        }
        return StreamingResponse(_prepend(first, chunks), media_type=media if shown_inline else "application/octet-stream",
                                 headers=headers)

    @router.get("/compare")
    def compare(request: Request, runs: Annotated[list[str] | None, Query()] = None) -> Response:
        tracking = workspace_of(request).tracking
        ids = run_ids(runs or [])
        frame = tracking.compare_runs(ids)
        names = labels(frame)
        infos = {run_id: tracking.get_run_info(run_id) for run_id in ids}
        colors = run_colors(names)
        coordinates = parallel(frame, [colors[names[run_id]] for run_id in frame.columns])
        overlays = overlay_charts(request, frame, names, colors)
        if coordinates is not None:  # final values are on its axes already: keep the histories only
            overlays = [chart for chart in overlays if chart["history"]]
        return render(request, "compare.html", section="experiments", ids=ids, names=names, infos=infos,
                      colors=colors, rows=comparison_rows(frame), charts=overlays, parallel=coordinates)

    return router


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest
