"""Feature views with their freshness (last materialisation, ttl, stale or not) and the
statistics their last materialisation recorded; feature services and who consumes them."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from conveyor.features import FeatureStore
from conveyor.features.definitions import FeatureView
from conveyor.ui.rendering import render
from conveyor.ui.routing import page_router, workspace_of


def freshness(store: FeatureStore, view: FeatureView) -> dict[str, Any]:
    """When the view was last materialised, how old its newest row is now, and whether that exceeds its ttl."""
    last = store.last_materialization(view.name)
    ttl = view.ttl.total_seconds() if view.ttl else None
    age = None if last is None or last.newest_event_us is None else max(0.0, time.time() - last.newest_event_us / 1e6)
    return {"last": last, "ttl": ttl, "age": age, "stale": ttl is not None and (age is None or age > ttl)}


def statistics(store: FeatureStore, view: FeatureView) -> list[dict[str, Any]]:
    """One row per feature of the view's last materialisation, in the view's order."""
    found = {item.feature: item.stats for item in store.feature_statistics(view.name)}
    rows = []
    for feature in view.features:
        stats = found.get(feature.name)
        if stats is None:
            continue
        count = stats.get("count") or 0
        rows.append({"name": feature.name, "dtype": stats.get("dtype", feature.dtype), **stats,
                     "null_share": (stats.get("nulls") or 0) / count if count else None,
                     "median": (stats.get("quantiles") or {}).get("0.5")})
    return rows


def build_router() -> APIRouter:
    router = page_router()

    @router.get("/features")
    def features(request: Request) -> Response:
        ws = workspace_of(request)
        store = FeatureStore(workspace=ws)
        try:
            views = [{"version": version, "view": view, "freshness": freshness(store, view),
                      "statistics": statistics(store, view)}
                     for version, view in store.list_definitions("feature_view")]
            services = store.list_definitions("feature_service")
        finally:
            store.close()
        consumers = ws.registry.feature_service_consumers([service.name for _, service in services]) if services else {}
        return render(request, "features.html", section="features", views=views, services=services,
                      consumers=consumers)

    return router
