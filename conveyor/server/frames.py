"""DataFrames over HTTP: Arrow IPC for the SDK (types intact, no parsing), JSON records for everyone else."""

from __future__ import annotations

import io

import httpx
import pandas as pd
import pyarrow as pa
from fastapi import Request, Response

ARROW = "application/vnd.apache.arrow.stream"


def frame_response(request: Request, frame: pd.DataFrame, headers: dict[str, str] | None = None) -> Response:
    """``frame`` as Arrow IPC if the client accepts it, else as ``{"columns": [...], "rows": [...]}`` JSON."""
    if ARROW in request.headers.get("accept", ""):
        table = pa.Table.from_pandas(frame, preserve_index=not isinstance(frame.index, pd.RangeIndex))
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return Response(sink.getvalue(), media_type=ARROW, headers=headers)
    body = frame.reset_index() if not isinstance(frame.index, pd.RangeIndex) else frame
    text = body.to_json(orient="split", index=False, date_format="iso")
    return Response(text, media_type="application/json", headers=headers)


def read_frame(response: httpx.Response) -> pd.DataFrame:
    """The DataFrame an Arrow IPC response carries."""
    return pa.ipc.open_stream(response.content).read_pandas()
