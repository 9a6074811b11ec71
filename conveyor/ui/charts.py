"""Plotly figures as plain dicts (``{"data": [...], "layout": {...}}``), drawn in the browser
by the plotly.js the server ships; one look for every chart of the UI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

PALETTE = ["#2563eb", "#f97316", "#16a34a", "#dc2626", "#9333ea", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d"]
Figure = dict[str, Any]


def layout(title: str = "", x_title: str = "", y_title: str = "", **extra: Any) -> dict[str, Any]:
    """The shared layout: quiet grid, legend below, small margins."""
    base: dict[str, Any] = {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 14}} if title else None,
        "margin": {"l": 56, "r": 16, "t": 36 if title else 12, "b": 40},
        "font": {"family": "Inter, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12, "color": "#1f2937"},
        "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
        "colorway": PALETTE,
        "xaxis": {"title": {"text": x_title}, "gridcolor": "#eef0f3", "zeroline": False, "automargin": True},
        "yaxis": {"title": {"text": y_title}, "gridcolor": "#eef0f3", "zeroline": False, "automargin": True},
        "legend": {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.0, "yanchor": "bottom", "font": {"size": 11}},
        "hovermode": "x unified",
    }
    base.update(extra)
    return {key: value for key, value in base.items() if value is not None}


def lines(series: Mapping[str, tuple[Sequence[Any], Sequence[Any]]], title: str = "", x_title: str = "",
          y_title: str = "", threshold: float | None = None, markers: bool | None = None,
          colors: Mapping[str, str] | None = None) -> Figure:
    """One line per named ``(x, y)`` series (coloured by ``colors`` when given), with an optional dashed threshold."""
    data = []
    for name, (x, y) in series.items():
        show_markers = markers if markers is not None else len(x) <= 40
        trace = {"type": "scatter", "mode": "lines+markers" if show_markers else "lines", "name": name,
                 "x": list(x), "y": list(y), "line": {"width": 2}, "marker": {"size": 5}}
        if colors and name in colors:
            trace["line"]["color"] = trace["marker"]["color"] = colors[name]
        data.append(trace)
    legend = len(series) > 1
    figure = {"data": data, "layout": layout(title, x_title, y_title, showlegend=legend)}
    if legend and not title:
        figure["layout"]["margin"]["t"] = 40
    if threshold is not None:
        figure["layout"]["shapes"] = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": threshold,
                                       "y1": threshold, "line": {"color": "#dc2626", "dash": "dash", "width": 1}}]
    return figure


def parallel_coordinates(dimensions: Sequence[dict[str, Any]], colors: Sequence[str]) -> Figure:
    """Parallel coordinates (plotly ``parcoords``): line ``i`` across the dimensions in ``colors[i]``."""
    count = len(colors)
    scale = [[i / max(count - 1, 1), color] for i, color in enumerate(colors)]
    line = {"color": list(range(count)), "colorscale": scale if count > 1 else [[0, colors[0]], [1, colors[0]]],
            "cmin": 0, "cmax": max(count - 1, 1), "showscale": False}
    return {"data": [{"type": "parcoords", "line": line, "dimensions": list(dimensions),
                      "labelfont": {"size": 12}, "tickfont": {"size": 10}}],
            "layout": layout(margin={"l": 56, "r": 56, "t": 48, "b": 24}, hovermode=False)}


def heatmap(x: Sequence[Any], y: Sequence[str], z: Sequence[Sequence[float | None]], text: Sequence[Sequence[str]],
            title: str = "", colors: Sequence[tuple[float, str]] | None = None, zmin: float = 0, zmax: float = 1) -> Figure:
    """A grid of cells (rows ``y``, columns ``x``) with hover text."""
    scale = [list(stop) for stop in colors] if colors else [[0, "#dcfce7"], [1, "#dc2626"]]
    return {
        "data": [{"type": "heatmap", "x": list(x), "y": list(y), "z": [list(row) for row in z],
                  "text": [list(row) for row in text], "hoverinfo": "text", "colorscale": scale,
                  "zmin": zmin, "zmax": zmax, "showscale": False, "xgap": 2, "ygap": 2}],
        "layout": layout(title, hovermode="closest", yaxis={"automargin": True, "gridcolor": "rgba(0,0,0,0)"},
                         xaxis={"automargin": True, "gridcolor": "rgba(0,0,0,0)"}),
    }


def dots(labels: Sequence[str], values: Sequence[float], colors: Mapping[str, str] | None = None) -> Figure:
    """One dot per label on an axis fitted to the values: close values stay distinguishable, unlike bars from zero."""
    marker = {"size": 13, "color": [(colors or {}).get(label, PALETTE[0]) for label in labels]}
    return {"data": [{"type": "scatter", "mode": "markers", "x": list(labels), "y": list(values), "marker": marker,
                      "hovertemplate": "%{x}: %{y}<extra></extra>"}],
            "layout": layout("", "", "", showlegend=False, hovermode="closest",
                             xaxis={"type": "category", "automargin": True, "gridcolor": "#eef0f3"})}


def roc(curves: Sequence[tuple[str, Sequence[float], Sequence[float]]]) -> Figure:
    """ROC curves with the chance diagonal."""
    data = [{"type": "scatter", "mode": "lines", "name": name, "x": list(fpr), "y": list(tpr)} for name, fpr, tpr in curves]
    data.append({"type": "scatter", "mode": "lines", "name": "chance", "x": [0, 1], "y": [0, 1],
                 "line": {"dash": "dot", "color": "#9ca3af", "width": 1}, "hoverinfo": "skip"})
    legend = {"x": 0.98, "y": 0.02, "xanchor": "right", "yanchor": "bottom", "bgcolor": "rgba(255,255,255,0.8)"}
    return {"data": data, "layout": layout("", "false positive rate", "true positive rate", hovermode="closest",
                                           legend=legend)}
