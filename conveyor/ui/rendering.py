"""Rendering pages: the Jinja2 environment, its filters, and the helpers every page uses."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pandas as pd
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from conveyor.governance import Actor

UI_DIR = Path(__file__).parent
STATIC_DIR = UI_DIR / "static"


def _timestamp(value: Any) -> dt.datetime | None:
    if value is None or value is pd.NaT or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromtimestamp(value / 1000, dt.UTC)


def when(value: Any) -> str:
    """Epoch milliseconds (or a datetime, or ISO 8601 text) as ``2026-01-31 14:05 UTC``."""
    moment = _timestamp(value)
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def ago(value: Any) -> str:
    """Epoch milliseconds (or a datetime) as ``3 h ago``."""
    moment = _timestamp(value)
    if moment is None:
        return ""
    seconds = (dt.datetime.now(dt.UTC) - moment).total_seconds()
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if abs(seconds) >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


def duration(seconds: Any) -> str:
    """Seconds as ``2 d 3 h``, ``45 min`` or ``12 s``."""
    if seconds is None:
        return ""
    seconds = float(seconds)
    if seconds >= 86_400:
        return f"{int(seconds // 86_400)} d {int(seconds % 86_400 // 3_600)} h"
    if seconds >= 3_600:
        return f"{int(seconds // 3_600)} h {int(seconds % 3_600 // 60)} min"
    if seconds >= 60:
        return f"{int(seconds // 60)} min"
    return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"


def number(value: Any, digits: int = 4) -> str:
    """A number for a table cell: ``0.9132``, ``1,204``, ``1.2e-05``; blanks for missing values."""
    if value is None or isinstance(value, bool):
        return "" if value is None else str(value)
    if not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if value != 0 and (abs(value) < 10 ** -digits or abs(value) >= 1e9):
        return f"{value:.{digits - 1}e}"
    return f"{value:,.{digits}f}"


def size(value: Any) -> str:
    """Bytes as ``12.3 kB``."""
    if value is None:
        return ""
    amount = float(value)
    for unit in ("B", "kB", "MB", "GB"):
        if amount < 1000 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    return f"{amount:.1f} GB"


def query(base: str, **params: Any) -> str:
    """``base`` with the non-empty ``params`` as its query string."""
    kept = {key: value for key, value in params.items() if value not in (None, "", [], False)}
    return f"{base}?{urlencode(kept, doseq=True)}" if kept else base


def figure(spec: dict[str, Any], height: int = 320) -> Markup:
    """A plotly figure as a ``div`` that ``app.js`` draws (the JSON rides, escaped, in an attribute)."""
    data = json.dumps(_finite(spec), default=_plain, allow_nan=False, separators=(",", ":"))
    return Markup(f'<div class="chart" style="height:{int(height)}px" data-figure="{Markup.escape(data)}"></div>')


def _finite(value: Any) -> Any:
    """JSON-ready: NaN and infinities become null (plotly draws a gap), numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return _finite(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _asset_version(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _plotly_version() -> str:
    import plotly

    return plotly.__version__


templates = Jinja2Templates(directory=str(UI_DIR / "templates"))
environment = templates.env
environment.trim_blocks = True
environment.lstrip_blocks = True
environment.filters.update(when=when, ago=ago, number=number, size=size, duration=duration)
environment.tests["startingwith"] = lambda value, prefix: str(value).startswith(prefix)
environment.globals.update(
    query=query, figure=figure,
    assets={name: _asset_version(STATIC_DIR / name) for name in ("app.css", "app.js", "htmx.min.js")},
    plotly_version=_plotly_version(),
)


def actor_of(request: Request) -> Actor | None:
    """Who the authentication middleware says is acting, if anyone."""
    return getattr(request.state, "actor", None)


def is_htmx(request: Request) -> bool:
    """True for a request htmx sent to swap part of a page (not for a history restore)."""
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-history-restore-request") != "true"


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page (or a fragment) rendered with the acting user and the current path."""
    context.setdefault("section", "")
    return templates.TemplateResponse(
        request, template, {"actor": actor_of(request), "path": request.url.path, **context}, status_code=status_code,
    )
