"""Automation: retraining policies (never showing a webhook's secret, headers or URL path)
and their jobs, watches of new champions, and the agents doing the work."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response

from conveyor.automation import Policy
from conveyor.ui.rendering import is_htmx, render
from conveyor.ui.routing import page_router, workspace_of

HIDDEN = "••••••"
JOB_STATUSES = ("pending", "running", "waiting", "succeeded", "failed", "cancelled", "skipped")


def mask_url(url: str) -> str:
    """``https://hooks.slack.com/…``: the host only, since paths and queries often carry tokens."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    hidden = "/…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{host}{port}{hidden}"


def masked(value: Any) -> Any:
    """A policy document with every webhook's URL path, secret and header values hidden."""
    if isinstance(value, list):
        return [masked(item) for item in value]
    if not isinstance(value, dict):
        return value
    found = {key: masked(item) for key, item in value.items()}
    if found.get("type") == "webhook":
        found["url"] = mask_url(str(found.get("url", "")))
        if found.get("secret"):
            found["secret"] = HIDDEN
        found["headers"] = {name: HIDDEN for name in found.get("headers") or {}}
    return found


def describe_trigger(trigger: dict[str, Any]) -> tuple[str, str]:
    """A trigger's type and its settings on one line: ``("drift", "metric dataset_drift.share_drifted · above 0.3")``."""
    details = " · ".join(f"{key} {value}" for key, value in trigger.items()
                         if key != "type" and value not in (None, "", [], {}, False))
    return trigger.get("type", "?"), details


def policies(request: Request) -> list[dict[str, Any]]:
    """Stored policies with their state, as the UI may show them."""
    found = []
    for row in workspace_of(request).automation.list_policies():
        spec = masked(Policy.model_validate(row["spec"]).model_dump(mode="json"))
        found.append({**{key: row[key] for key in ("name", "model", "paused", "state", "updated_at", "updated_by")},
                      "spec": spec, "triggers": [describe_trigger(t) for t in spec.get("triggers", [])]})
    return found


def build_router() -> APIRouter:
    router = page_router()

    @router.get("/automation")
    def automation(request: Request, status: str = "", policy: str = "") -> Response:
        service = workspace_of(request).automation
        status = status if status in JOB_STATUSES else ""
        jobs = service.list_jobs(policy=policy or None, status=status or None, limit=100)
        context = {"jobs": jobs, "status": status, "policy": policy, "statuses": JOB_STATUSES}
        if is_htmx(request):
            return render(request, "_jobs.html", **context)
        return render(request, "automation.html", section="automation", policies=policies(request),
                      counts=service.job_counts(), watches=service.watches()[:20], agents=service.agents()[:10],
                      **context)

    return router
