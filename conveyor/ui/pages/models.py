"""Registered models, their versions and, per version, lineage, validation, model card and
the approval workflow (validators approve or reject in place)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from markdown_it import MarkdownIt

from conveyor.errors import ConveyorError, NotFound
from conveyor.registry import ModelVersion, VersionStatus
from conveyor.ui import charts
from conveyor.ui.rendering import actor_of, render
from conveyor.ui.routing import page_router, workspace_of

VALIDATOR = "validator"
DECIDABLE = (VersionStatus.CANDIDATE, VersionStatus.VALIDATED)


def lineage(request: Request, version: ModelVersion) -> dict[str, Any]:
    """Where a version comes from and where it serves: data, features, run, version, deployments."""
    ws = workspace_of(request)
    run, experiment, data = None, None, []
    if version.run_id:
        try:
            run = ws.tracking.get_run(version.run_id)
            experiment = ws.tracking.get_experiment(run.info.experiment_id)
        except NotFound:
            run = None
    if run is not None:
        data = [item for item in run.inputs if item.id in version.datasets] or list(run.inputs)
    serving = []
    for deployment in ws.deployments.list():
        if deployment.spec.model != version.model:
            continue
        weights = {route.target: route.weight for route in deployment.spec.traffic}
        for target, number in deployment.resolved.items():
            if number == version.version:
                role = "shadow" if target in deployment.spec.shadow else f"{weights.get(target, 0):g}%"
                serving.append({"name": deployment.name, "target": target, "role": role})
    return {"data": data, "features": version.feature_service, "run": run, "experiment": experiment,
            "deployments": serving}


def validation(request: Request, name: str, number: int) -> dict[str, Any] | None:
    """The latest validation report's summary and its ROC curves, if the version was validated."""
    found = workspace_of(request).registry.validation_report(name, number)
    if found is None:
        return None
    report, _ = found
    champion = f"champion v{report.champion_version}" if report.champion_version else "champion"
    curves = [(_curve_name(f"v{number}", c.label, len(report.curves.roc)), c.fpr, c.tpr) for c in report.curves.roc]
    curves += [(_curve_name(champion, c.label, len(report.curves.champion_roc)), c.fpr, c.tpr)
               for c in report.curves.champion_roc]
    return {"report": report, "roc": charts.roc(curves) if curves else None}


def _curve_name(who: str, label: str, count: int) -> str:
    """``v2`` for a binary model's one curve, ``v2 class B`` for one of several."""
    return who if count == 1 else f"{who} class {label}"


def model_card(request: Request, name: str, number: int) -> str:
    """The version's model card as HTML (raw HTML in any fact is escaped)."""
    from conveyor.registry.cards import render_card

    markdown = render_card(workspace_of(request).registry, name, number, "md")
    return MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)


def approval(request: Request, name: str, number: int) -> dict[str, Any]:
    """The version's status, its approval history and whether the actor may decide now."""
    registry = workspace_of(request).registry
    version = registry.get_model_version(name, number)
    approvals = registry.list_approvals(name, number)
    actor = actor_of(request)
    return {"version": version, "approvals": approvals,
            "can_decide": actor is not None and actor.has_role(VALIDATOR) and version.status in DECIDABLE,
            "pending": any(item.decision is None for item in approvals)}


def approval_panel(request: Request, name: str, number: int, error: str | None = None,
                   status_code: int = 200) -> Response:
    """The approval panel as htmx swaps it after a decision, with the version's status in the
    lineage and, after a change, the model card (which shows the status) swapped out of band."""
    card = None if error else model_card(request, name, number)
    return render(request, "_approval.html", status_code=status_code, error=error, oob=True, card=card,
                  **approval(request, name, number))


def build_router() -> APIRouter:
    router = page_router()

    @router.get("/models")
    def models(request: Request) -> Response:
        found = workspace_of(request).registry.list_registered_models()
        return render(request, "models.html", section="models", models=found)

    @router.get("/models/{name}")
    def model(request: Request, name: str) -> Response:
        registry = workspace_of(request).registry
        found = registry.get_registered_model(name)
        versions = registry.list_model_versions(name)
        history = registry.alias_history(name)[-15:][::-1]
        return render(request, "model.html", section="models", model=found, versions=versions, history=history)

    @router.get("/models/{name}/versions/{number}")
    def version(request: Request, name: str, number: int) -> Response:
        found = workspace_of(request).registry.get_registered_model(name)
        panel = approval(request, name, number)
        return render(request, "version.html", section="models", model=found, lineage=lineage(request, panel["version"]),
                      validation=validation(request, name, number), card=model_card(request, name, number),
                      error=None, oob=False, **panel)

    @router.get("/models/{name}/versions/{number}/validation")
    def validation_page(request: Request, name: str, number: int) -> Response:
        found = workspace_of(request).registry.validation_report(name, number)
        if found is None:
            raise NotFound(f"version {number} of '{name}' has not been validated", field="version")
        return HTMLResponse(found[1])

    @router.post("/models/{name}/versions/{number}/approve")
    def approve(request: Request, name: str, number: int, comment: Annotated[str, Form()] = "") -> Response:
        return _decide(request, name, number, lambda registry: registry.approve(name, number, comment.strip() or None))

    @router.post("/models/{name}/versions/{number}/reject")
    def reject(request: Request, name: str, number: int, reason: Annotated[str, Form()] = "") -> Response:
        return _decide(request, name, number, lambda registry: registry.reject(name, number, reason))

    return router


def _decide(request: Request, name: str, number: int, decision: Any) -> Response:
    """Apply a decision; a refusal (not a validator, the creator, no request...) is shown in the panel."""
    try:
        decision(workspace_of(request).registry)
    except ConveyorError as error:
        if isinstance(error, NotFound):
            raise
        return approval_panel(request, name, number, error=error.message, status_code=error.http_status)
    return approval_panel(request, name, number)
