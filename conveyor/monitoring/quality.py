"""Data quality of current data against the reference: nulls, values out of the
reference's range, categories never seen in training, and schema changes."""

from __future__ import annotations

from conveyor.monitoring.results import Point
from conveyor.monitoring.sketch import CategoricalSketch, NumericSketch, Profile

NULL_RATE_INCREASE = 0.05
OUT_OF_RANGE_SHARE = 0.01
UNSEEN_SHARE = 0.01
CHECK = "data_quality"


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def data_quality(reference: Profile, current: Profile) -> list[Point]:
    """Points per column: null rate (fails when it grew by more than 5 points), share of
    values outside the reference's range, share of unseen categories (each fails above
    1%), and schema changes (a missing column fails, a changed type warns, a new
    column is reported)."""
    points: list[Point] = []
    for name, expected in reference.columns.items():
        if name not in current.types:
            points.append(Point(CHECK, "missing_column", 1.0, "fail", name, 0.0, current.rows))
            continue
        actual = current.columns.get(name)
        if actual is None:
            continue
        null_rate = _share(actual.nulls, actual.rows)
        limit = _share(expected.nulls, expected.rows) + NULL_RATE_INCREASE
        points.append(Point(CHECK, "null_rate", null_rate, "fail" if null_rate > limit else "ok", name, limit, actual.rows))
        if isinstance(expected, NumericSketch) and isinstance(actual, NumericSketch):
            outside = _share(actual.under + int(actual.counts[-1]), actual.count)
            points.append(Point(CHECK, "out_of_range", outside, "fail" if outside > OUT_OF_RANGE_SHARE else "ok",
                                name, OUT_OF_RANGE_SHARE, actual.rows))
        elif isinstance(expected, CategoricalSketch) and isinstance(actual, CategoricalSketch):
            unseen = sum(count for level, count in actual.levels.items() if level not in expected.levels)
            share = _share(unseen, actual.count)
            points.append(Point(CHECK, "unseen_categories", share, "fail" if share > UNSEEN_SHARE else "ok",
                                name, UNSEEN_SHARE, actual.rows))
        if reference.types.get(name) != current.types.get(name):
            points.append(Point(CHECK, "type_changed", 1.0, "warn", name, 0.0, actual.rows))
    for name in current.types:
        if name not in reference.types and name in current.columns:
            points.append(Point(CHECK, "new_column", 1.0, "info", name, None, current.rows))
    return points
