"""Watching a new champion: its monitored figures against the previous champion's last
known ones, for a period after the alias moved; a breach rolls the alias back.

A watch starts for every move of the policy's alias to a new version (by the agent or
by a person), never for a rollback. Each check aggregates the same way on both sides
(rows-weighted, or weighted by labelled rows with a minimum for quality metrics), so the
comparison is like for like.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conveyor.automation.policy import Policy, WatchCheck
from conveyor.automation.triggers import (
    LABELLED_ROWS,
    labelled_quality,
    series,
    weighted,
)
from conveyor.monitoring.alerts.rules import duration_ms

if TYPE_CHECKING:
    from conveyor.core.workspace import Workspace

WATCHING, ROLLING_BACK, ROLLED_BACK = "watching", "rolling_back", "rolled_back"
PASSED, SUPERSEDED = "passed", "superseded"
OPEN = (WATCHING, ROLLING_BACK)


def figure(workspace: Workspace, model: str, version: int, check: WatchCheck, since: int,
           until: int) -> tuple[float | None, int]:
    """A check's figure for a version over ``(since, until]``: (value or None when too few
    labels or no windows, labelled rows or windows used)."""
    if check.min_labels or check.metric.startswith("model_quality.") and check.metric != LABELLED_ROWS:
        value, labelled, _ = labelled_quality(workspace, model, version, check.metric, check.column, since, until)
        if value is None or labelled < max(check.min_labels, 1):
            return None, labelled
        return value, labelled
    frame = series(workspace, model, version, check.metric, check.column, since, until)
    return (None, 0) if frame.empty else (weighted(frame), len(frame))


def baseline(workspace: Workspace, policy: Policy, previous: int, at: int) -> dict[str, Any]:
    """The previous champion's last known figures: each check over the period before ``at``."""
    assert policy.watch is not None
    since = at - duration_ms(policy.watch.period)
    figures = {}
    for check in policy.watch.checks:
        value, used = figure(workspace, policy.model, previous, check, since, at)
        figures[_key(check)] = {"value": value, "used": used}
    return figures


def breach(workspace: Workspace, policy: Policy, version: int, started: int, now: int,
           figures: dict[str, Any]) -> str | None:
    """Why the watched version breaches a check since ``started``, or None."""
    assert policy.watch is not None
    for check in policy.watch.checks:
        before = figures.get(_key(check), {}).get("value")
        if before is None:
            continue
        value, used = figure(workspace, policy.model, version, check, started, now)
        if value is None:
            continue
        if check.max_drop is not None and value < before - check.max_drop:
            return (f"{check.metric} of version {version} is {value:.4f}, more than {check.max_drop} below the "
                    f"previous champion's {before:.4f} ({used:,} labelled rows or windows)")
        if check.max_rise is not None and value > before + check.max_rise:
            return (f"{check.metric} of version {version} is {value:.4f}, more than {check.max_rise} above the "
                    f"previous champion's {before:.4f} ({used:,} windows)")
    return None


def _key(check: WatchCheck) -> str:
    return f"{check.metric}[{check.column}]" if check.column else check.metric
