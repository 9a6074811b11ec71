"""Feature freshness: how old the newest materialised value of each feature view is."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from conveyor.monitoring.results import Point

if TYPE_CHECKING:
    from conveyor.features.store import FeatureStore

CHECK = "freshness"


def freshness(store: FeatureStore, views: Sequence[str], now_s: float | None = None) -> list[Point]:
    """One point per view: age in seconds of its newest online value (``fail`` with no
    successful materialisation)."""
    now_s = time.time() if now_s is None else now_s
    points = []
    for view in views:
        last = store.last_materialization(view)
        if last is None or last.newest_event_us is None:
            points.append(Point(CHECK, "age_s", None, "fail", view))
        else:
            points.append(Point(CHECK, "age_s", max(0.0, now_s - last.newest_event_us / 1e6), "info", view,
                                rows=last.rows_written))
    return points
