"""DataFrames over HTTP: Arrow IPC for the SDK (types intact, no parsing), JSON records for everyone else."""

from __future__ import annotations

import io
import json

import httpx
import pandas as pd
import pyarrow as pa
from fastapi import Request, Response

from conveyor.errors import ValidationError

ARROW = "application/vnd.apache.arrow.stream"


def frame_response(request: Request, frame: pd.DataFrame, headers: dict[str, str] | None = None) -> Response:
    """``frame`` as Arrow IPC if the client accepts it, else as ``{"columns": [...], "rows": [...]}`` JSON."""
    if ARROW in request.headers.get("accept", ""):
        return Response(arrow_bytes(frame), media_type=ARROW, headers=headers)
    keyed = not isinstance(frame.index, pd.RangeIndex)
    body = frame.reset_index() if keyed else frame
    split = json.loads(body.to_json(orient="split", index=False, date_format="iso"))
    return Response(json.dumps({**split, "index": keyed}), media_type="application/json", headers=headers)


def read_frame(response: httpx.Response) -> pd.DataFrame:
    """The DataFrame a response carries, as Arrow IPC or as ``split`` JSON (a frame whose
    columns mix types, such as runs side by side, travels as JSON)."""
    if response.headers.get("content-type", "").startswith(ARROW):
        return read_arrow(response.content)
    body = response.json()
    frame = pd.DataFrame(body["data"], columns=body["columns"])
    return frame.set_index(frame.columns[0]).rename_axis(None) if body.get("index") else frame


def read_arrow(data: bytes) -> pd.DataFrame:
    """A DataFrame sent as an Arrow IPC stream; ``ValidationError`` if the bytes are not one."""
    try:
        return pa.ipc.open_stream(data).read_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValidationError(f"the body is not an Arrow IPC stream: {exc}", field="body") from exc


def arrow_bytes(frame: pd.DataFrame) -> bytes:
    """A DataFrame as an Arrow IPC stream (its index is kept unless it is the default one)."""
    table = pa.Table.from_pandas(frame, preserve_index=not isinstance(frame.index, pd.RangeIndex))
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()
