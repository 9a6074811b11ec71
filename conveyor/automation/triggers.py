"""Whether a policy's triggers fire now, and under which key.

A trigger that fires names its evidence in a stable key (the champion version and the
newest monitored window it read, a schedule slot), so every agent that sees the same
evidence proposes the same job and the database keeps one. Degradation triggers read the
champion's own monitored series only: the figures of a replaced version never retrain
its successor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pandas as pd
from croniter import croniter

from conveyor.automation.policy import (
    DriftTrigger,
    NewDataTrigger,
    Policy,
    QualityTrigger,
    ScheduleTrigger,
    StalenessTrigger,
)
from conveyor.core.clock import iso
from conveyor.monitoring.alerts.rules import duration_ms

if TYPE_CHECKING:
    from conveyor.core.workspace import Workspace

LABELLED_ROWS = "model_quality.labelled_rows"
MAX_SLOTS = 100_000


@dataclass(frozen=True)
class Firing:
    """A trigger that fired: its type, the key of its evidence and a sentence saying why."""

    trigger: str
    key: str
    reason: str


@dataclass(frozen=True)
class Context:
    """What triggers read: the champion and when it became champion (agent clock), when the
    policy last trained, and now."""

    workspace: Workspace
    policy: Policy
    champion: int | None
    champion_since: int | None
    last_training: int | None
    now: int


def series(workspace: Workspace, model: str, version: int, metric: str, column: str, since: int,
           until: int) -> pd.DataFrame:
    """A version's monitored points of ``metric`` with windows ending in ``(since, until]``,
    usable ones only (a value, not ``insufficient``), in window order."""
    frame = workspace.monitoring.results.history(model, metric, column, since, until)
    if frame.empty:
        return frame
    end = (frame["window_end"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    keep = (frame["version"] == version) & frame["value"].notna() & (frame["status"] != "insufficient") & (end <= until)
    return frame[keep].reset_index(drop=True)


def weighted(frame: pd.DataFrame, weights: pd.Series | None = None) -> float:
    """The mean of ``value`` weighted by rows (or ``weights``); a plain mean without weights."""
    values = frame["value"].astype(float)
    weights = (frame["rows"] if weights is None else weights).fillna(0).astype(float)
    return float((values * weights).sum() / weights.sum()) if weights.sum() > 0 else float(values.mean())


def labelled_quality(workspace: Workspace, model: str, version: int, metric: str, column: str, since: int,
                     until: int) -> tuple[float | None, int, int | None]:
    """A quality metric over ``(since, until]`` weighted by each window's labelled rows:
    (value or None, labelled rows, end of the newest window used)."""
    values = series(workspace, model, version, metric, column, since, until)
    if values.empty:
        return None, 0, None
    labels = series(workspace, model, version, LABELLED_ROWS, "", since, until)
    merged = values.merge(labels[["window_start", "window_end", "value"]], on=["window_start", "window_end"],
                          how="left", suffixes=("", "_labels"))
    counts = merged["value_labels"].fillna(0)
    newest = int(merged["window_end"].max().value // 1_000_000)
    return weighted(merged, counts), int(counts.sum()), newest


def drift(context: Context, trigger: DriftTrigger) -> Firing | None:
    """Fires when the champion's drift series averages above the threshold over the lookback."""
    if context.champion is None:
        return None
    since = context.now - duration_ms(trigger.over)
    frame = series(context.workspace, context.policy.model, context.champion, trigger.metric, trigger.column, since,
                   context.now)
    if frame.empty:
        return None
    value = weighted(frame)
    if value <= trigger.above:
        return None
    newest = int(frame["window_end"].max().value // 1_000_000)
    return Firing("drift", f"drift:v{context.champion}:{newest}",
                  f"{trigger.metric} of version {context.champion} averaged {value:.3f} > {trigger.above} over the "
                  f"last {trigger.over} ({len(frame)} window(s))")


def quality(context: Context, trigger: QualityTrigger) -> Firing | None:
    """Fires when the champion's quality, on enough labelled rows, averages below the threshold."""
    if context.champion is None:
        return None
    value, labelled, newest = labelled_quality(context.workspace, context.policy.model, context.champion,
                                               trigger.metric, "", context.now - duration_ms(trigger.over),
                                               context.now)
    if value is None or labelled < trigger.min_labels or value >= trigger.below:
        return None
    return Firing("quality", f"quality:v{context.champion}:{newest}",
                  f"{trigger.metric} of version {context.champion} was {value:.4f} < {trigger.below} on {labelled:,} "
                  f"labelled rows over the last {trigger.over}")


def staleness(context: Context, trigger: StalenessTrigger) -> Firing | None:
    """Fires when the champion is older than ``max_age`` (once per age period), or a feature
    view it reads is older than its ttl."""
    if context.champion is None:
        return None
    if trigger.max_age is not None and context.champion_since is not None:
        limit = duration_ms(trigger.max_age)
        age = context.now - context.champion_since
        if age > limit:
            return Firing("staleness", f"staleness:v{context.champion}:{age // limit}",
                          f"version {context.champion} has been {context.policy.alias} for {age / 86_400_000:.1f} days "
                          f"> {trigger.max_age}")
    if trigger.feature_views:
        stale = stale_views(context)
        if stale:
            return Firing("staleness", f"staleness:v{context.champion}:views:{context.now // 3_600_000}",
                          f"feature view(s) older than their ttl: {', '.join(stale)}")
    return None


def stale_views(context: Context) -> list[str]:
    """The champion's feature views whose newest online value is older than their ttl."""
    version = context.workspace.registry.get_model_version(context.policy.model, context.champion)  # type: ignore[arg-type]
    if not version.feature_service:
        return []
    from conveyor.features.store import FeatureStore
    from conveyor.monitoring.freshness import freshness

    store = FeatureStore(workspace=context.workspace)
    service = store.get_feature_service(version.feature_service)
    views = sorted({feature.view for feature in service.features})  # type: ignore[union-attr]
    stale = []
    for point in freshness(store, views, context.now / 1000):
        ttl = store.get_feature_view(point.column).ttl
        if point.value is None or (ttl is not None and point.value > ttl.total_seconds()):
            stale.append(point.column)
    return stale


def new_data(context: Context, trigger: NewDataTrigger) -> Firing | None:
    """Fires when monitoring counted ``min_rows`` labelled predictions of the champion since
    the last training (again at each further multiple while no retrain replaces it)."""
    if context.champion is None:
        return None
    since = context.last_training or context.champion_since or 0
    frame = series(context.workspace, context.policy.model, context.champion, LABELLED_ROWS, "", since, context.now)
    rows = int(frame["value"].sum()) if not frame.empty else 0
    if rows < trigger.min_rows:
        return None
    return Firing("new_data", f"new_data:v{context.champion}:{since}:{rows // trigger.min_rows}",
                  f"{rows:,} new labelled rows since {iso(since / 1000)} >= {trigger.min_rows:,}")


def condition_firings(context: Context) -> list[Firing]:
    """Every degradation, staleness and new-data trigger of the policy that fires now."""
    checks: dict[type, Any] = {DriftTrigger: drift, QualityTrigger: quality, StalenessTrigger: staleness,
                               NewDataTrigger: new_data}
    firings = []
    for trigger in context.policy.triggers:
        check = checks.get(type(trigger))
        if check is not None and (firing := check(context, trigger)) is not None:
            firings.append(firing)
    return firings


@dataclass(frozen=True)
class SlotDecision:
    """What a schedule trigger does at one evaluation: the slot to run (if any), how many
    slots were missed, and where the schedule now stands."""

    run: int | None
    missed: int
    last_slot: int


def slots_between(trigger: ScheduleTrigger, after: int, until: int) -> list[int]:
    """Slot times (epoch ms) of the cron in its time zone, after ``after`` up to ``until``."""
    start = datetime.fromtimestamp(after / 1000, ZoneInfo(trigger.timezone))
    cron = croniter(trigger.cron, start)
    found: list[int] = []
    while len(found) < MAX_SLOTS:
        slot = int(cron.get_next(datetime).astimezone(timezone.utc).timestamp() * 1000)
        if slot > until:
            break
        found.append(slot)
    return found


def schedule(trigger: ScheduleTrigger, last_slot: int | None, now: int) -> SlotDecision:
    """Decide a schedule trigger: the first evaluation arms it (slots before it are not
    owed); later, the newest due slot runs unless it is more than ``grace`` late and
    ``catchup`` is ``skip``; older due slots are missed."""
    if last_slot is None:
        return SlotDecision(None, 0, now)
    due = slots_between(trigger, last_slot, now)
    if not due:
        return SlotDecision(None, 0, last_slot)
    newest = due[-1]
    on_time = now - newest <= duration_ms(trigger.grace)
    if on_time or trigger.catchup == "once":
        return SlotDecision(newest, len(due) - 1, newest)
    return SlotDecision(None, len(due), newest)
