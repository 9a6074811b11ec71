"""Per-column distributions of a drift comparison, in the shape the report draws."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from conveyor.monitoring.sketch import NumericSketch, Profile, Sketch

TOP_LEVELS = 30


def distribution(sketch: Sketch, reference: Sketch) -> dict[str, Any]:
    """Shares per bin on the reference's grid (numeric) or per level (categorical)."""
    if isinstance(sketch, NumericSketch) and isinstance(reference, NumericSketch):
        edges = [min(sketch.min, reference.edges[0]), *reference.edges.tolist(), max(sketch.max, reference.edges[-1])]
        shares = sketch.counts / max(sketch.count, 1)
        return {"edges": [float(e) if np.isfinite(e) else 0.0 for e in edges], "shares": shares.tolist()}
    levels = sorted(reference.levels, key=lambda level: -reference.levels[level])[:TOP_LEVELS]  # type: ignore[union-attr]
    levels += [lv for lv in sorted(sketch.levels, key=lambda lv: -sketch.levels[lv]) if lv not in levels][:5]  # type: ignore[union-attr]
    total = max(sketch.count, 1)
    return {"levels": levels, "shares": [sketch.levels.get(level, 0) / total for level in levels]}  # type: ignore[union-attr]


def drift_rows(table: pd.DataFrame, reference: Profile, current: Profile) -> list[dict[str, Any]]:
    """The drift table's rows with both sides' distributions."""
    rows = []
    for row in table.to_dict("records"):
        name = row["column"]
        expected, actual = reference.columns[name], current.columns[name]
        rows.append({**row, "p_value": None if pd.isna(row["p_value"]) else row["p_value"],
                     "reference": distribution(expected, expected), "current": distribution(actual, expected)})
    return rows
