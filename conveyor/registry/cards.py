"""Model cards, generated from what the platform knows about a version."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from conveyor.errors import NotFound, ValidationError
from conveyor.registry.packaging import read_manifest

if TYPE_CHECKING:
    from conveyor.governance.validation import ModelCardFacts
    from conveyor.registry.service import RegistryService


def card_facts(registry: RegistryService, name: str, version: int | str) -> ModelCardFacts:
    """Everything the card shows: the model's metadata, the version's lineage, its run's
    params and metrics, the signature, the latest validation and the approvals."""
    from conveyor.governance.validation import ModelCardFacts

    model = registry.get_registered_model(name)
    found = registry.get_model_version(name, version)
    manifest = read_manifest(registry.artifacts.get_bytes(found.manifest_sha256))
    params: dict[str, str] = {}
    metrics: dict[str, float] = {}
    training: list[dict[str, Any]] = []
    if found.run_id:
        try:
            run = registry.tracking.get_run(found.run_id)
        except NotFound:
            run = None
        if run is not None:
            params, metrics = dict(run.params), dict(run.metrics)
            training = [
                {"name": item.name, "digest": item.digest, "rows": item.rows, "source": item.source, "context": item.context}
                for item in run.inputs if item.id in found.datasets
            ]
    validation = registry.validation_report(name, found.version)
    return ModelCardFacts(
        name=model.name, version=found.version, description=found.description or model.description,
        owner_team=model.owner_team, task_type=model.task_type, risk_tier=model.risk_tier.value,
        intended_use=model.intended_use, limitations=model.limitations, created_by=found.created_by,
        created_at=found.created_at, status=found.status.value, run_id=found.run_id, git_commit=found.git_commit,
        flavor=found.flavor, libraries=manifest.libraries,
        signature_inputs=[column.model_dump() for column in manifest.signature.inputs] if manifest.signature else [],
        training_data=training, run_metrics=metrics, params=params,
        validation=validation[0] if validation else None,
        approvals=[
            {"actor": item.decided_by or item.requested_by, "decision": item.decision or "requested",
             "reason": item.reason or item.comment, "at": item.decided_at or item.requested_at}
            for item in registry.list_approvals(name, found.version)
        ],
        aliases=found.aliases,
    )


def render_card(registry: RegistryService, name: str, version: int | str, fmt: Literal["md", "html"] = "md") -> str:
    """The model card as Markdown or HTML."""
    if fmt not in ("md", "html"):
        raise ValidationError(f"card format must be md or html, got {fmt!r}", field="format")
    from conveyor.governance.validation import render_card_html, render_card_markdown

    facts = card_facts(registry, name, version)
    return render_card_markdown(facts) if fmt == "md" else render_card_html(facts)
