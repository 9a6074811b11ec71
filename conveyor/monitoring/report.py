"""A monitoring report as one self-contained HTML page with interactive plotly charts.

The page opens offline: plotly.js travels inside it gzip-compressed and base64-encoded
(2 MB instead of 4.8 MB) and the browser unpacks it with ``DecompressionStream``.
Each chart is a plain plotly figure embedded as JSON, with long histograms merged to
at most 30 bins and categories cut to the top 20 levels, and it is drawn only when it
scrolls into view, so a report on a hundred columns stays small and opens at once.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
from datetime import UTC, date, datetime
from functools import cache
from importlib import resources
from itertools import pairwise
from typing import Any

import jinja2
from markupsafe import Markup

from conveyor.core.html import package_template

MAX_BINS = 30
MAX_LEVELS = 20
MAX_LABELLED_LEVELS = 8
MISSING = "—"
REFERENCE_COLOR = "#95a5a6"
CURRENT_COLOR = "#2874a6"
THRESHOLD_COLOR = "#c0392b"
STATUS_COLORS = {
    "ok": "#2e7d32",
    "pass": "#2e7d32",
    "warn": "#d68910",
    "warning": "#d68910",
    "fail": "#c0392b",
    "alert": "#c0392b",
    "critical": "#c0392b",
}
UNKNOWN_STATUS_COLOR = "#7f8c8d"
_CHART_LAYOUT = {
    "margin": {"l": 44, "r": 8, "t": 6, "b": 30},
    "font": {"family": "system-ui, sans-serif", "size": 10},
    "showlegend": False,
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "#fff",
}
# Order in which rows come first: what needs attention before what does not.
_STATUS_ORDER = {"fail": 0, "critical": 0, "firing": 0, "warn": 1, "warning": 1, "pending": 1}


@cache
def plotly_bundle() -> str:
    """plotly.min.js from the installed plotly package, gzip-compressed then base64-encoded.

    Compressed once per process: every report embeds the same 2 MB of text.
    """
    source = resources.files("plotly") / "package_data" / "plotly.min.js"
    return base64.b64encode(gzip.compress(source.read_bytes(), compresslevel=9, mtime=0)).decode("ascii")


@cache
def _template() -> jinja2.Template:
    filters = {"number": _number, "percent": _percent, "timestamp": _timestamp}
    return package_template("conveyor.monitoring", "report.html.j2", filters)


def _plain(value: Any) -> Any:
    """``value`` as JSON-native data: arrays as lists, times as ISO text, NaN and infinity as None."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return _plain(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def render_json(data: dict[str, Any]) -> str:
    """The content of the report as pretty JSON, for machines and for rendering the page later.

    ``render_report(json.loads(render_json(data)))`` gives the same page as
    ``render_report(data)``; NaN and infinity become ``null`` so any JSON parser reads it.
    """
    return json.dumps(_plain(data), indent=2, ensure_ascii=False, allow_nan=False)


def render_report(data: dict[str, Any]) -> str:
    """Render monitoring results as one HTML page that needs nothing else to display.

    The page shows the model and window, summary cards, drift per column (drifted
    columns first, each with its reference and current distribution), data quality
    checks, one chart per metric series against its threshold, and the alerts. A
    missing or empty section says there is nothing to show instead of failing.

    Args:
        data: the monitoring results as plain data (numpy values and datetimes are
            accepted): ``model``, ``version``, ``generated_at``, ``window`` (``start``,
            ``end``), ``summary`` (``rows``, ``reference_rows``, ``drifted_columns``,
            ``columns``, ``share_drifted``, ``dataset_drift``, ``labelled_rows``), and
            lists of rows: ``drift`` (``column``, ``type``, ``test``, ``statistic``,
            ``p_value``, ``threshold``, ``drifted``, and ``reference`` and ``current``
            as ``edges`` and ``shares`` for numeric columns or ``levels`` and
            ``shares`` for categorical ones), ``quality`` (``column``, ``check``,
            ``reference``, ``current``, ``status``), ``series`` (``metric``,
            ``column``, ``points`` of ``window_end``, ``value``, ``threshold``,
            ``status``) and ``alerts`` (``rule``, ``severity``, ``state``,
            ``metric``, ``value``, ``since``, ``message``).

    Returns:
        The page, about 2 MB plus a few kB per column.
    """
    content = _plain(data)
    charts: dict[str, Markup] = {}

    def add_chart(figure: dict[str, Any] | None) -> str | None:
        if figure is None:
            return None
        chart_id = f"chart-{len(charts)}"
        charts[chart_id] = _chart_json(figure)
        return chart_id

    drift = sorted(_rows(content, "drift"), key=lambda row: not row.get("drifted"))
    drift_rows = [(row, add_chart(drift_figure(row))) for row in drift]
    series_rows = [(series, add_chart(series_figure(series))) for series in _rows(content, "series")]
    summary = content.get("summary") or {}
    return _template().render(
        data=content,
        window=content.get("window") or {},
        summary=summary,
        drifted=summary.get("drifted_columns", sum(bool(row.get("drifted")) for row in drift)),
        columns=summary.get("columns", len(drift)),
        firing=sum(alert.get("state") == "firing" for alert in _rows(content, "alerts")),
        drift_rows=drift_rows,
        quality=sorted(_rows(content, "quality"), key=_status_rank),
        series_rows=series_rows,
        alerts=sorted(_rows(content, "alerts"), key=_status_rank),
        charts=charts,
        colors={"reference": REFERENCE_COLOR, "current": CURRENT_COLOR, "status": STATUS_COLORS},
        plotly_bundle=plotly_bundle() if charts else None,
    )


def _rows(content: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [row for row in content.get(key) or [] if isinstance(row, dict)]


def _status_rank(row: dict[str, Any]) -> int:
    return _STATUS_ORDER.get(str(row.get("state") or row.get("status") or "").lower(), 2)


def _chart_json(figure: dict[str, Any]) -> Markup:
    """``figure`` as compact JSON safe inside a ``<script>`` element: no ``<``, ``>`` or ``&``."""
    text = json.dumps(figure, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _round(value: Any, digits: int = 4) -> float | None:
    """``value`` to ``digits`` significant digits, so the page carries no float noise."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


def drift_figure(row: dict[str, Any]) -> dict[str, Any] | None:
    """Reference against current distribution of one column; None when neither is usable."""
    numeric = row.get("type") == "numeric"
    sides = [
        (name, color, row.get(name))
        for name, color in (("reference", REFERENCE_COLOR), ("current", CURRENT_COLOR))
        if isinstance(row.get(name), dict)
    ]
    if numeric:
        traces = [trace for name, color, side in sides if (trace := _histogram_trace(name, color, side))]
        layout = {"barmode": "overlay", "bargap": 0}
    else:
        traces = _level_traces(sides)
        # Names of more levels than fit in a small chart would overlap: hovering shows them.
        shown = len(traces[0]["x"]) <= MAX_LABELLED_LEVELS if traces else True
        layout = {"barmode": "group", "bargap": 0.15, "xaxis": {"type": "category", "showticklabels": shown}}
    if not traces:
        return None
    layout = {**_CHART_LAYOUT, **layout, "height": 140}
    layout["yaxis"] = {"tickformat": ".0%", "rangemode": "tozero", "gridcolor": "#eee"}
    return {"data": traces, "layout": layout}


def _histogram_trace(name: str, color: str, side: dict[str, Any]) -> dict[str, Any] | None:
    """One histogram as bars on their bins, merged down to at most ``MAX_BINS`` bins."""
    edges, shares = side.get("edges") or [], side.get("shares") or []
    if not shares or len(edges) != len(shares) + 1:
        return None
    step = math.ceil(len(shares) / MAX_BINS)
    edges = edges[::step] if (len(edges) - 1) % step == 0 else [*edges[::step], edges[-1]]
    shares = [sum(value or 0 for value in shares[start : start + step]) for start in range(0, len(shares), step)]
    drawn = _drawable_edges(edges)
    if drawn is None:
        return None
    labels = [_bin_label(low, high) for low, high in pairwise(edges)]
    return {
        "type": "bar",
        "name": name,
        "x": [_round((low + high) / 2, 6) for low, high in pairwise(drawn)],
        "width": [_round(high - low, 6) for low, high in pairwise(drawn)],
        "y": [_round(share) for share in shares],
        "text": labels,
        "textposition": "none",
        "hovertemplate": f"%{{text}}: %{{y:.1%}}<extra>{name}</extra>",
        "marker": {"color": color, "opacity": 0.6},
    }


def _drawable_edges(edges: list[Any]) -> list[float] | None:
    """Bin edges with an open end (None, from infinity) drawn as wide as its neighbour bin.

    None when an inner edge is missing or the edges descend: such a histogram is not drawn.
    """
    drawn = [_round(edge, 12) for edge in edges]
    if None in drawn[1:-1] or drawn == [None, None]:
        return None
    if drawn[0] is None:
        drawn[0] = drawn[1] - (drawn[2] - drawn[1] if len(drawn) > 2 and drawn[2] is not None else 1.0)
    if drawn[-1] is None:
        drawn[-1] = drawn[-2] + (drawn[-2] - drawn[-3] if len(drawn) > 2 else 1.0)
    if any(high < low for low, high in pairwise(drawn)):
        return None
    return drawn


def _bin_label(low: Any, high: Any) -> str:
    if low is None:
        return f"below {_number(high)}"
    if high is None:
        return f"{_number(low)} and above"
    return f"{_number(low)} to {_number(high)}"


def _level_traces(sides: list[tuple[str, str, Any]]) -> list[dict[str, Any]]:
    """Grouped bars of the ``MAX_LEVELS`` most common levels, the rest summed as one bar."""
    shares_by_side: list[tuple[str, str, dict[str, float]]] = []
    for name, color, side in sides:
        levels, shares = side.get("levels") or [], side.get("shares") or []
        if not levels or len(levels) != len(shares):
            continue
        counted: dict[str, float] = {}
        for level, share in zip(levels, shares, strict=True):
            key = MISSING if level is None else str(level)
            counted[key] = counted.get(key, 0.0) + (share or 0.0)
        shares_by_side.append((name, color, counted))
    ranked = sorted(
        {level for _, _, counted in shares_by_side for level in counted},
        key=lambda level: -max(counted.get(level, 0.0) for _, _, counted in shares_by_side),
    )
    shown, rest = ranked[:MAX_LEVELS], ranked[MAX_LEVELS:]
    labels = [*shown, f"other {len(rest)} levels"] if rest else shown
    traces = []
    for name, color, counted in shares_by_side:
        values = [counted.get(level, 0.0) for level in shown]
        if rest:
            values.append(sum(counted.get(level, 0.0) for level in rest))
        traces.append(
            {
                "type": "bar",
                "name": name,
                "x": labels,
                "y": [_round(value) for value in values],
                "hovertemplate": f"%{{x}}: %{{y:.1%}}<extra>{name}</extra>",
                "marker": {"color": color},
            }
        )
    return traces


def series_figure(series: dict[str, Any]) -> dict[str, Any] | None:
    """A metric over window ends: points coloured by status, the threshold dashed. A window
    without enough labels has no threshold to draw (it carries the label minimum instead)."""
    points = sorted(
        ({**point, "threshold": None} if point.get("status") == "insufficient" else point
         for point in series.get("points") or [] if isinstance(point, dict)),
        key=lambda point: str(point.get("window_end") or ""),
    )
    if not points:
        return None
    x = [_plot_time(point.get("window_end")) for point in points]
    statuses = [str(point.get("status") or "") for point in points]
    traces = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "value",
            "x": x,
            "y": [_round(point.get("value")) for point in points],
            "text": statuses,
            "line": {"color": "#34495e", "width": 1.5},
            "marker": {"size": 7, "color": [STATUS_COLORS.get(s.lower(), UNKNOWN_STATUS_COLOR) for s in statuses]},
            "hovertemplate": "%{x}<br>%{y} (%{text})<extra></extra>",
        }
    ]
    thresholds = [_round(point.get("threshold")) for point in points]
    if any(threshold is not None for threshold in thresholds):
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "threshold",
                "x": x,
                "y": thresholds,
                "line": {"color": THRESHOLD_COLOR, "width": 1, "dash": "dash", "shape": "hv"},
                "hovertemplate": "threshold %{y}<extra></extra>",
            }
        )
    layout = {**_CHART_LAYOUT, "height": 220, "margin": {"l": 50, "r": 12, "t": 10, "b": 36}}
    layout["yaxis"] = {"gridcolor": "#eee", "zeroline": False}
    layout["xaxis"] = {"gridcolor": "#eee"}
    return {"data": traces, "layout": layout}


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _plot_time(value: Any) -> Any:
    """An ISO time in UTC without offset, the form plotly reads as a date; other text unchanged."""
    moment = _parse_time(value)
    if moment is None:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _timestamp(value: Any) -> str:
    """An ISO time as ``2026-11-23 10:00 UTC``; other text unchanged, a dash when missing."""
    if _missing(value):
        return MISSING
    moment = _parse_time(value)
    if moment is None:
        return str(value)
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _missing(value: Any) -> bool:
    """Whether the template has nothing to show: None, empty text or a key the data lacks."""
    return value is None or value == "" or isinstance(value, jinja2.Undefined)


def _number(value: Any) -> str:
    """Whole numbers with thousands separators, others to four significant digits."""
    if _missing(value):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _percent(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return MISSING
    return f"{value:.1%}"
