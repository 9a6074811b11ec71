"""``conveyor models``: thin over the registry service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from conveyor.cli_support import JsonFlag, console, print_json, print_records, workspace
from conveyor.errors import ValidationError

models_app = typer.Typer(help="Registered models: versions, aliases, validation, approval, packaging.", no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="Registered model name.")]
Version = Annotated[str, typer.Argument(help="Version number or alias.")]
VERSION_COLUMNS = ["version", "status", "aliases", "flavor", "run_id", "created_by", "created_at"]


def _read_frame(path: Path, field: str):
    import pandas as pd

    if not path.is_file():
        raise ValidationError(f"{field} file {str(path)!r} does not exist", field=field)
    readers = {".parquet": pd.read_parquet, ".csv": pd.read_csv, ".json": pd.read_json}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise ValidationError(f"{field} file {path.name!r}: use .parquet, .csv or .json", field=field)
    return reader(path)


def _version_rows(versions: list) -> list[dict]:  # type: ignore[type-arg]
    return [{**v.model_dump(mode="json"), "aliases": ", ".join(v.aliases)} for v in versions]


@models_app.command("list")
def list_models(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List registered models."""
    found = workspace(ctx).registry.list_registered_models()
    rows = [m.model_dump(mode="json") for m in found]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        row["aliases"] = ", ".join(f"{alias}→{version}" for alias, version in row["aliases"].items())
    columns = ["name", "risk_tier", "task_type", "owner_team", "latest_version", "aliases", "updated_at"]
    print_records(rows, f"Registered models ({len(rows)})", columns, times=("updated_at",))


@models_app.command("create")
def create_model(
    ctx: typer.Context,
    name: Name,
    description: Annotated[str | None, typer.Option(help="What the model does.")] = None,
    owner_team: Annotated[str | None, typer.Option(help="The team that answers for it.")] = None,
    task_type: Annotated[str | None, typer.Option(help="classification, regression ...")] = None,
    risk_tier: Annotated[str | None, typer.Option(help="low, medium or high.")] = None,
    intended_use: Annotated[str | None, typer.Option(help="What it may be used for.")] = None,
    limitations: Annotated[str | None, typer.Option(help="Known limitations.")] = None,
) -> None:
    """Create a registered model."""
    model = workspace(ctx).registry.create_registered_model(
        name, description, owner_team, task_type, risk_tier, intended_use, limitations
    )
    console.print(f"created registered model [bold]{model.name}[/] (risk tier {model.risk_tier.value})")


@models_app.command("update")
def update_model(
    ctx: typer.Context,
    name: Name,
    description: Annotated[str | None, typer.Option()] = None,
    owner_team: Annotated[str | None, typer.Option()] = None,
    task_type: Annotated[str | None, typer.Option()] = None,
    risk_tier: Annotated[str | None, typer.Option(help="Validators and platform admins only.")] = None,
    intended_use: Annotated[str | None, typer.Option()] = None,
    limitations: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Change a registered model's facts or risk tier."""
    model = workspace(ctx).registry.update_registered_model(
        name, description=description, owner_team=owner_team, task_type=task_type, risk_tier=risk_tier,
        intended_use=intended_use, limitations=limitations,
    )
    console.print(f"updated registered model [bold]{model.name}[/]")


@models_app.command("show")
def show_model(ctx: typer.Context, name: Name, as_json: JsonFlag = False) -> None:
    """Show a registered model, its aliases and versions."""
    registry = workspace(ctx).registry
    model = registry.get_registered_model(name)
    versions = registry.list_model_versions(name)
    if as_json:
        print_json({**model.model_dump(mode="json"), "versions": [v.model_dump(mode="json") for v in versions]})
        return
    facts = model.model_dump(mode="json", exclude={"id", "aliases"})
    console.print(f"[bold]{model.name}[/]")
    for key, value in facts.items():
        if value not in (None, {}, ""):
            console.print(f"  {key}: {value}")
    console.print("  aliases: " + (", ".join(f"{a} → {v}" for a, v in model.aliases.items()) or "none"))
    print_records(_version_rows(versions), "Versions", VERSION_COLUMNS, times=("created_at",))


@models_app.command("versions")
def list_versions(
    ctx: typer.Context,
    name: Name,
    status: Annotated[str | None, typer.Option(help="Only versions with this status.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List a model's versions, newest first."""
    versions = workspace(ctx).registry.list_model_versions(name, status)
    if as_json:
        print_json([v.model_dump(mode="json") for v in versions])
        return
    print_records(_version_rows(versions), f"Versions of {name}", VERSION_COLUMNS, times=("created_at",))


@models_app.command("register")
def register(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="runs:/RUN_ID/PATH of a logged model.")],
    name: Name,
    description: Annotated[str | None, typer.Option()] = None,
    feature_service: Annotated[str | None, typer.Option(help="The feature service the model consumes.")] = None,
) -> None:
    """Register a logged model as the next version of NAME."""
    version = workspace(ctx).registry.create_model_version(name, source, description, feature_service)
    console.print(f"registered [bold]{name}[/] version {version.version} ({version.status.value})")


@models_app.command("alias")
def alias(
    ctx: typer.Context,
    name: Name,
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="champion, challenger, any name.")],
    version: Annotated[str | None, typer.Argument(help="Version to point at; omit to show the alias's history.")] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Set, move or delete an alias, or show its history."""
    registry = workspace(ctx).registry
    if delete:
        registry.delete_alias(name, alias_name)
        console.print(f"deleted alias [bold]{alias_name}[/] of {name}")
    elif version is not None:
        moved = registry.set_alias(name, alias_name, version)
        console.print(f"[bold]{name}@{alias_name}[/] → version {moved.version}")
    else:
        history = [change.model_dump() for change in registry.alias_history(name, alias_name)]
        if as_json:
            print_json(history)
            return
        columns = ["action", "version", "previous_version", "actor", "at"]
        print_records(history, f"History of {name}@{alias_name}", columns, times=("at",))


@models_app.command("rollback")
def rollback(
    ctx: typer.Context,
    name: Name,
    alias_name: Annotated[str, typer.Option("--alias", help="The alias to move back.")] = "champion",
) -> None:
    """Point an alias back at the version it held before."""
    restored = workspace(ctx).registry.rollback_alias(name, alias_name)
    console.print(f"[bold]{name}@{alias_name}[/] rolled back to version {restored.version}")


@models_app.command("validate")
def validate(
    ctx: typer.Context,
    name: Name,
    version: Version,
    data: Annotated[Path, typer.Option("--data", help="Holdout data (.parquet, .csv, .json).")],
    target: Annotated[str | None, typer.Option(help="Label column (default: from the signature).")] = None,
    segment: Annotated[str | None, typer.Option(help="Column to check stability across.")] = None,
    time_column: Annotated[str | None, typer.Option("--time-column", help="Date column for stability over time.")] = None,
    period: Annotated[str, typer.Option(help="Period of the time column: M, Q, W.")] = "M",
    reference: Annotated[Path | None, typer.Option(help="Training data for PSI (default: profile logged with the model).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the HTML report here.")] = None,
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="Load pickled models (runs their code).")] = False,
    trusted_type: Annotated[list[str], typer.Option("--trusted-type", help="A skops type to trust (repeatable).")] = [],  # noqa: B006
    as_json: JsonFlag = False,
) -> None:
    """Validate a version on holdout data against the champion; store the report."""
    frame = _read_frame(data, "data")
    reference_frame = _read_frame(reference, "reference") if reference else None
    registry = workspace(ctx).registry
    updated, report = registry.validate_version(
        name, version, frame, target, segment, time_column, period, reference_frame,
        allow_pickle=allow_pickle, trusted_types=trusted_type,
    )
    if output:
        _, html = registry.validation_report(name, updated.version)
        output.write_text(html)
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    verdict = "[green]passed[/]" if report.passed else "[red]failed[/]"
    console.print(f"validation of [bold]{name}[/] version {updated.version}: {verdict} → status {updated.status.value}")
    for check in report.checks:
        mark = "[green]✓[/]" if check.passed else ("[red]✗[/]" if check.severity == "fail" else "[yellow]![/]")
        console.print(f"  {mark} {check.name}: {check.detail}")
    if output:
        console.print(f"report written to {output}")


@models_app.command("card")
def card(
    ctx: typer.Context,
    name: Name,
    version: Version,
    fmt: Annotated[str, typer.Option("--format", help="md or html.")] = "md",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the card here.")] = None,
) -> None:
    """Generate the model card of a version."""
    from conveyor.registry.cards import render_card

    text = render_card(workspace(ctx).registry, name, version, fmt)  # type: ignore[arg-type]
    if output:
        output.write_text(text)
        console.print(f"model card written to {output}")
    else:
        typer.echo(text)


@models_app.command("request-approval")
def request_approval(
    ctx: typer.Context, name: Name, version: Version, comment: Annotated[str | None, typer.Option()] = None
) -> None:
    """Ask a validator to approve a validated version."""
    request = workspace(ctx).registry.request_approval(name, version, comment)
    console.print(f"approval of [bold]{name}[/] version {request.version} requested by {request.requested_by}")


@models_app.command("approve")
def approve(
    ctx: typer.Context, name: Name, version: Version, comment: Annotated[str | None, typer.Option()] = None
) -> None:
    """Approve a version (validators only, not its creator)."""
    approved = workspace(ctx).registry.approve(name, version, comment)
    console.print(f"[green]approved[/] [bold]{name}[/] version {approved.version}")


@models_app.command("reject")
def reject(
    ctx: typer.Context,
    name: Name,
    version: Version,
    reason: Annotated[str, typer.Option(help="Why it is rejected (required).")],
) -> None:
    """Reject a version, with the reason."""
    rejected = workspace(ctx).registry.reject(name, version, reason)
    console.print(f"[red]rejected[/] [bold]{name}[/] version {rejected.version}: {reason}")


@models_app.command("archive")
def archive(ctx: typer.Context, name: Name, version: Version) -> None:
    """Retire a version that holds no alias."""
    archived = workspace(ctx).registry.archive(name, version)
    console.print(f"archived [bold]{name}[/] version {archived.version}")


@models_app.command("package")
def package(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="NAME@ALIAS, NAME/VERSION or NAME (its champion).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the bundle into (new or empty).")],
) -> None:
    """Export a version as a self-contained serving bundle: model files, pinned requirements, serve.py, Dockerfile."""
    from conveyor.serving.bundle import write_bundle

    bundle = write_bundle(workspace(ctx).registry, model, out)
    console.print(f"packaged [bold]{bundle.name}[/] version {bundle.version} → {bundle.path} ({bundle.files} files); "
                  f"run: python {bundle.path / 'serve.py'} --port 8080", soft_wrap=True, highlight=False)
