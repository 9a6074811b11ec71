"""render_report and render_json on monitoring results of up to a hundred columns."""

from __future__ import annotations

import base64
import gzip
import json
import math
import re
from importlib import resources
from itertools import pairwise
from typing import Any

import plotly.graph_objects as go
import pytest

from conveyor.monitoring.report import (
    MAX_BINS,
    MAX_LEVELS,
    plotly_bundle,
    render_json,
    render_report,
)

HOSTILE = "<script>alert(1)</script>"
CHART_SCRIPT = re.compile(r'<script type="application/json" id="(chart-\d+)">(.*?)</script>', re.DOTALL)
BUNDLE_SCRIPT = re.compile(r'<script type="application/octet-stream" id="plotly-gzip-base64">(.*?)</script>', re.DOTALL)


def normal_histogram(mean: float, scale: float, bins: int) -> dict[str, list[float]]:
    """Shares of a normal distribution on ``bins`` equal bins over ``mean ± 4 scale``."""
    edges = [mean - 4 * scale + 8 * scale * i / bins for i in range(bins + 1)]
    cdf = [0.5 * (1 + math.erf((edge - mean) / (scale * math.sqrt(2)))) for edge in edges]
    return {"edges": edges, "shares": [high - low for low, high in pairwise(cdf)]}


def level_shares(levels: int, decay: float) -> dict[str, list[Any]]:
    weights = [decay**i for i in range(levels)]
    return {"levels": [f"level-{i}" for i in range(levels)], "shares": [w / sum(weights) for w in weights]}


def drift_row(column: str, index: int, bins: int = 1000, levels: int = 60) -> dict[str, Any]:
    drifted = index % 3 == 0
    if index % 2 == 0:
        return {
            "column": column,
            "type": "numeric",
            "test": "wasserstein",
            "statistic": 0.21 if drifted else 0.03,
            "p_value": None,
            "threshold": 0.1,
            "drifted": drifted,
            "reference": normal_histogram(0.0, 1.0, bins),
            "current": normal_histogram(0.8 if drifted else 0.05, 1.2, bins),
        }
    return {
        "column": column,
        "type": "categorical",
        "test": "jensenshannon",
        "statistic": 0.15 if drifted else 0.02,
        "p_value": None,
        "threshold": 0.1,
        "drifted": drifted,
        "reference": level_shares(levels, 0.85),
        "current": level_shares(levels, 0.7 if drifted else 0.84),
    }


def report_data(columns: int, bins: int = 1000, levels: int = 60) -> dict[str, Any]:
    """Monitoring results with ``columns`` columns, half numeric and half categorical."""
    names = [f"feature_{i:03d}" for i in range(columns)]
    drift = [drift_row(name, i, bins, levels) for i, name in enumerate(names)]
    points = [
        {
            "window_end": f"2026-11-{day:02d}T10:00:00Z",
            "value": 0.84 - 0.015 * day,
            "threshold": 0.7,
            "status": "ok" if 0.84 - 0.015 * day >= 0.7 else "fail",
        }
        for day in range(1, 23)
    ]
    drifted = sum(row["drifted"] for row in drift)
    return {
        "model": "credit-risk",
        "version": 3,
        "generated_at": "2026-11-23T10:00:00Z",
        "window": {"start": "2026-11-22T10:00:00Z", "end": "2026-11-23T10:00:00Z"},
        "summary": {
            "rows": 12000,
            "reference_rows": 50000,
            "drifted_columns": drifted,
            "columns": columns,
            "share_drifted": drifted / columns,
            "dataset_drift": drifted / columns > 0.5,
            "labelled_rows": 800,
        },
        "drift": drift,
        "quality": [
            {"column": names[0], "check": "null_rate", "reference": 0.01, "current": 0.2, "status": "fail"},
            {"column": names[-1], "check": "out_of_range", "reference": 0.0, "current": 0.001, "status": "ok"},
        ],
        "series": [
            {"metric": "model_quality.roc_auc", "column": "", "points": points},
            {"metric": "drift.share_drifted", "column": "", "points": []},
        ],
        "alerts": [
            {
                "rule": "auc-drop",
                "severity": "critical",
                "state": "firing",
                "metric": "model_quality.roc_auc",
                "value": 0.62,
                "since": "2026-11-20T10:00:00Z",
                "message": "AUC below 0.7 for 3 windows",
            }
        ],
    }


def charts(page: str) -> dict[str, dict[str, Any]]:
    return {chart_id: json.loads(text) for chart_id, text in CHART_SCRIPT.findall(page)}


def drift_charts(page: str) -> list[dict[str, Any]]:
    return [chart for chart in charts(page).values() if chart["data"][0]["type"] == "bar"]


@pytest.fixture(scope="module")
def hundred_columns() -> tuple[dict[str, Any], str]:
    data = report_data(100)
    return data, render_report(data)


def test_a_hundred_columns_stay_under_five_megabytes_and_all_appear(hundred_columns):
    data, page = hundred_columns

    assert len(page.encode()) < 5_000_000
    for row in data["drift"]:
        assert f'<td class="name">{row["column"]}</td>' in page


def test_long_histograms_and_many_levels_are_cut_down(hundred_columns):
    _, page = hundred_columns
    found = drift_charts(page)

    assert len(found) == 100
    numeric = [chart for chart in found if "width" in chart["data"][0]]
    categorical = [chart for chart in found if "width" not in chart["data"][0]]
    assert len(numeric) == len(categorical) == 50
    # 1000 bins merge 34 at a time: 29 full bins and one of the last 14.
    assert {len(trace["x"]) for chart in numeric for trace in chart["data"]} == {30}
    assert all(len(chart["data"][0]["x"]) <= MAX_BINS for chart in numeric)
    first = numeric[0]["data"][0]
    assert sum(first["y"]) == pytest.approx(1.0, abs=1e-3)
    assert first["x"][0] == pytest.approx(-4 + 34 * 0.008 / 2)
    assert first["width"][0] == pytest.approx(34 * 0.008)
    # 60 levels become the top 20 and one bar for the other 40.
    levels = categorical[0]["data"][0]["x"]
    assert len(levels) == MAX_LEVELS + 1
    assert levels[:3] == ["level-0", "level-1", "level-2"]
    assert levels[-1] == "other 40 levels"
    assert sum(categorical[0]["data"][1]["y"]) == pytest.approx(1.0, abs=1e-3)


def test_every_drift_chart_parses_and_has_reference_and_current(hundred_columns):
    _, page = hundred_columns

    for chart in drift_charts(page):
        assert [trace["name"] for trace in chart["data"]] == ["reference", "current"]
        go.Figure(chart)  # plotly rejects a property it does not know
    ids = set(re.findall(r'<div class="chart[^"]*" data-figure="(chart-\d+)">', page))
    assert ids == set(charts(page))


def test_floats_are_rounded_to_four_significant_digits(hundred_columns):
    _, page = hundred_columns

    for chart in drift_charts(page):
        for trace in chart["data"]:
            assert all(value == float(f"{value:.4g}") for value in trace["y"])


def test_drifted_columns_come_first_and_are_highlighted(hundred_columns):
    data, page = hundred_columns
    order = re.findall(r'<tr( class="flag")?>\s*<td class="name">(feature_\d+)</td>', page)

    drifted = [row["column"] for row in data["drift"] if row["drifted"]]
    assert [name for _, name in order[: len(drifted)]] == drifted
    assert all(flag for flag, _ in order[: len(drifted)])
    assert not any(flag for flag, _ in order[len(drifted) : len(data["drift"])])


def test_the_series_chart_has_the_threshold_dashed_and_points_coloured_by_status(hundred_columns):
    _, page = hundred_columns
    (series,) = [chart for chart in charts(page).values() if chart["data"][0]["type"] == "scatter"]

    value, threshold = series["data"]
    assert value["x"][0] == "2026-11-01 10:00:00"
    assert value["y"][0] == 0.825
    assert value["marker"]["color"][0] == "#2e7d32"
    assert value["marker"]["color"][-1] == "#c0392b"
    assert threshold["line"]["dash"] == "dash"
    assert set(threshold["y"]) == {0.7}
    assert "Nothing to show: no points." in page  # the second series is empty


def test_the_embedded_bundle_is_plotly_min_js_compressed(hundred_columns):
    _, page = hundred_columns
    (encoded,) = BUNDLE_SCRIPT.findall(page)

    expected = (resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()
    assert gzip.decompress(base64.b64decode(encoded)) == expected
    assert len(encoded) < len(expected) / 2
    assert plotly_bundle() is plotly_bundle()
    assert "https://" not in page.replace(encoded, "")  # nothing is fetched when the page opens


def test_user_strings_are_escaped():
    data = report_data(2, bins=10, levels=5)
    data["model"] = HOSTILE
    data["drift"][0]["column"] = HOSTILE
    data["drift"][1]["reference"]["levels"][0] = HOSTILE
    data["drift"][1]["current"]["levels"][0] = HOSTILE
    data["quality"][0]["column"] = HOSTILE
    data["alerts"][0]["message"] = HOSTILE

    page = render_report(data)

    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert any(HOSTILE in chart["data"][0]["x"] for chart in drift_charts(page))


@pytest.mark.parametrize("missing", [None, []])
def test_empty_sections_say_there_is_nothing_to_show(missing):
    page = render_report({"model": "m", "drift": missing, "quality": missing, "series": missing, "alerts": missing})

    assert page.count("Nothing to show") == 4
    assert charts(page) == {}
    assert len(page) < 20_000  # without charts plotly.js is left out
    assert "v<" not in page and "None" not in page


def test_an_empty_dict_renders():
    page = render_report({})

    assert "Unnamed model" in page
    assert page.count("Nothing to show") == 4


def test_open_ended_and_malformed_histograms():
    data = report_data(1, bins=4)
    row = data["drift"][0]
    row["reference"]["edges"][0] = float("-inf")
    row["reference"]["edges"][-1] = float("inf")
    row["current"]["edges"] = row["current"]["edges"][:-1]  # one edge short: not drawn

    (chart,) = drift_charts(render_report(data))

    (reference,) = chart["data"]
    assert reference["name"] == "reference"
    assert reference["x"] == [-3.0, -1.0, 1.0, 3.0]
    assert reference["text"][0] == "below -2" and reference["text"][-1] == "2 and above"


def test_render_json_round_trips():
    data = report_data(4, bins=40, levels=25)

    text = render_json(data)

    assert json.loads(text) == data
    assert text.startswith("{\n  ")
    assert render_report(json.loads(text)) == render_report(data)


def test_render_json_writes_infinity_as_null():
    assert json.loads(render_json({"drift": [{"statistic": float("nan"), "edges": [float("-inf"), 0.0]}]})) == {
        "drift": [{"statistic": None, "edges": [None, 0.0]}]
    }
