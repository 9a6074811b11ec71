"""``conveyor features``: thin over ``FeatureStore``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from conveyor.cli_support import JsonFlag, console, print_json, print_records, workspace
from conveyor.errors import ValidationError

features_app = typer.Typer(help="Feature store: definitions, materialisation, online values.", no_args_is_help=True)

Kind = Annotated[str | None, typer.Option("--kind", "-k", help="entity, feature_view or feature_service.")]
KINDS = ("entity", "feature_view", "feature_service")


def _store(ctx: typer.Context):  # noqa: ANN202  FeatureStore, imported lazily
    from conveyor.features import FeatureStore

    return FeatureStore(workspace=workspace(ctx))


def _summary(obj: Any) -> str:
    spec = obj.to_spec()
    if obj.kind == "entity":
        return "keys: " + ", ".join(spec["join_keys"])
    if obj.kind == "feature_view":
        ttl = f", ttl {spec['ttl_seconds'] / 86400:g} d" if spec["ttl_seconds"] else ""
        return f"{len(spec['features'])} features of {', '.join(spec['entities'])}{ttl}; source {spec['source']['kind']}"
    return f"{len(spec['features'])} features: " + ", ".join(spec["features"][:4]) + (" ..." if len(spec["features"]) > 4 else "")


@features_app.command("list")
def list_definitions(ctx: typer.Context, kind: Kind = None, as_json: JsonFlag = False) -> None:
    """List applied entities, feature views and services, with each view's freshness."""
    if kind is not None and kind not in KINDS:
        raise ValidationError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}", field="kind")
    store = _store(ctx)
    rows = []
    for version, obj in store.list_definitions(kind):
        row = {"kind": obj.kind, "name": obj.name, "version": version, "summary": _summary(obj), "materialized": None}
        if obj.kind == "feature_view":
            last = store.last_materialization(obj.name)
            if last is not None and last.freshness_seconds is not None:
                row["materialized"] = f"{last.rows_written:,} rows, newest {last.freshness_seconds / 3600:,.1f} h old"
        rows.append(row)
    if as_json:
        print_json(rows)
        return
    print_records(rows, f"Feature definitions ({len(rows)})", ["kind", "name", "version", "summary", "materialized"])


@features_app.command("show")
def show(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Object name.")], kind: Kind = None,
         as_json: JsonFlag = False) -> None:
    """Show an applied object: its spec and versions; for a view, its last materialisations and statistics."""
    store = _store(ctx)
    matches = [(v, obj) for v, obj in store.list_definitions(kind) if obj.name == name]
    if not matches:
        from conveyor.errors import NotFound

        raise NotFound(f"no applied entity, feature view or feature service {name!r}", field="name")
    if len(matches) > 1:
        raise ValidationError(f"{name!r} names several kinds of object: pass --kind", field="kind")
    version, obj = matches[0]
    detail: dict[str, Any] = {"kind": obj.kind, "version": version, "spec": obj.to_spec(),
                              "history": [h.model_dump(include={"version", "deleted", "created_by", "created_at"})
                                          for h in store.catalog.history(obj.kind, name)]}
    if obj.kind == "feature_view":
        detail["materializations"] = [m.model_dump(mode="json") for m in store.list_materializations(name, limit=5)]
        detail["statistics"] = {s.feature: s.stats for s in store.feature_statistics(name)}
    if as_json:
        print_json(detail)
        return
    console.print(f"[bold]{obj.label}[/] version {version}")
    console.print_json(json.dumps(detail["spec"], default=str))
    if detail.get("statistics"):
        columns = ["feature", "dtype", "count", "nulls", "min", "max", "mean", "std"]
        print_records([{"feature": k, **v} for k, v in detail["statistics"].items()],
                      "Statistics of the last materialisation", columns)


def _print_plan(plan: Any) -> None:
    if not plan.changes:
        console.print(f"no changes ({len(plan.unchanged)} objects up to date)")
        return
    table = Table(title="Feature definitions plan")
    for column in ("action", "kind", "name", "version", "details"):
        table.add_column(column, overflow="fold")
    colours = {"create": "green", "update": "yellow", "delete": "red"}
    for change in plan.changes:
        details = "\n".join(change.details + [f"[bold red]BREAKS {b}[/]" for b in change.breaking])
        table.add_row(f"[{colours[change.action]}]{change.action}[/]", change.kind, change.name, str(change.version), details)
    console.print(table)


@features_app.command("plan")
def plan(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Show what apply would create, update or delete, and which models a change would break."""
    result = _store(ctx).plan()
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    _print_plan(result)


@features_app.command("apply")
def apply(
    ctx: typer.Context,
    allow_breaking: Annotated[bool, typer.Option(help="Apply even if a model's feature service breaks.")] = False,
) -> None:
    """Check the definitions in features/ against their data and record the changed ones as new versions."""
    result = _store(ctx).apply(allow_breaking=allow_breaking)
    _print_plan(result)
    if result.changes:
        console.print(f"applied {len(result.changes)} change(s)")


@features_app.command("materialize")
def materialize(
    ctx: typer.Context,
    start: Annotated[str | None, typer.Option(help="Window start (exclusive), e.g. 2026-01-01.")] = None,
    end: Annotated[str | None, typer.Option(help="Window end (inclusive); default: now.")] = None,
    incremental: Annotated[bool, typer.Option(help="Start each view where its last run ended.")] = False,
    views: Annotated[list[str] | None, typer.Option("--view", help="Only this view (repeatable).")] = None,
) -> None:
    """Load the latest value per entity into the online store, with feature statistics."""
    if incremental and start:
        raise ValidationError("--incremental starts at each view's watermark: drop --start", field="start")
    store = _store(ctx)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        tasks: dict[str, Any] = {}

        def report(view: str, done: int, total: int) -> None:
            if view not in tasks:
                tasks[view] = progress.add_task(f"materialising {view}", total=total)
            progress.update(tasks[view], completed=done, total=total)

        if incremental:
            results = store.materialize_incremental(end=end, views=views, progress=report)
        else:
            results = store.materialize(start=start, end=end, views=views, progress=report)
    for run in results:
        fresh = f", newest row {run.freshness_seconds / 3600:,.1f} h old" if run.freshness_seconds is not None else ""
        console.print(f"{run.view} v{run.view_version}: read {run.rows_read:,} rows, wrote {run.rows_written:,} "
                      f"entities{fresh}")
    if not results:
        console.print("nothing to materialise: every view is up to date")


def _entity_rows(entities: list[str]) -> list[dict[str, str]]:
    rows = []
    for text in entities:
        row = {}
        for part in text.split(","):
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise ValidationError(f"--entity {text!r}: expected key=value[,key=value]", field="entity")
            row[key.strip()] = value.strip()
        rows.append(row)
    return rows


@features_app.command("get")
def get(
    ctx: typer.Context,
    features: Annotated[str, typer.Argument(help="A feature service, or view:feature[,view:feature].")],
    entities: Annotated[list[str], typer.Option("--entity", "-e", help="key=value[,key=value]; repeatable.")],
    as_json: JsonFlag = False,
) -> None:
    """Read online values of some entities, with each value's status."""
    refs: Any = features.split(",") if ":" in features else features
    response = _store(ctx).get_online_features(refs, _entity_rows(entities))
    if as_json:
        print_json({"values": response.to_dict(), "statuses": response.statuses})
        return
    frame = response.to_df(include_status=True)
    print_records(frame.to_dict(orient="records"), "Online features", list(frame.columns))
