"""The home page: how much the workspace holds, and where to go from here."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from conveyor.ui.rendering import render
from conveyor.ui.routing import page_router, workspace_of


def build_router() -> APIRouter:
    router = page_router()

    @router.get("/")
    def home(request: Request) -> Response:
        ws = workspace_of(request)
        experiments = ws.tracking.list_experiments()
        models = ws.registry.list_registered_models()
        firing = [state for state in ws.monitoring.alerts.states() if state.state == "firing"]
        counts = {
            "experiments": len(experiments), "runs": ws.tracking.count_runs(), "models": len(models),
            "deployments": len(ws.deployments.list()), "open alerts": len(firing),
        }
        return render(request, "home.html", section="home", counts=counts, experiments=experiments[-8:][::-1],
                      models=models[:8], firing=firing)

    return router
