"""``conveyor monitor``: thin over ``MonitoringService``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from conveyor.cli_support import (
    JsonFlag,
    console,
    print_frame,
    print_json,
    print_records,
    workspace,
)
from conveyor.errors import ValidationError

monitor_app = typer.Typer(help="Drift, data and model quality, operations and business metrics; alerts.",
                          no_args_is_help=True)
metric_app = typer.Typer(help="Business metrics: SQL over a model's prediction log.", no_args_is_help=True)
alerts_app = typer.Typer(help="Alert rules on any monitored series, their state and deliveries.", no_args_is_help=True)
monitor_app.add_typer(metric_app, name="metric")
monitor_app.add_typer(alerts_app, name="alerts")

Model = Annotated[str, typer.Argument(help="NAME@ALIAS, NAME/VERSION or NAME (its champion).")]


@monitor_app.command("run")
def run(
    ctx: typer.Context,
    model: Model,
    window: Annotated[str | None, typer.Option(help="Window length: 30m, 6h, 1d, 1w; default: --since to --until "
                                                     "as one window, else the last day.")] = None,
    since: Annotated[str | None, typer.Option(help="Start of the range (ISO 8601); default: one window ago.")] = None,
    until: Annotated[str | None, typer.Option(help="End of the range (ISO 8601); default: now.")] = None,
    step: Annotated[str | None, typer.Option(help="Rolling windows: one WINDOW long ending every STEP.")] = None,
    data: Annotated[Path | None, typer.Option(help="Check this Parquet/CSV file instead of the prediction log.")] = None,
    metrics_url: Annotated[str | None, typer.Option(help="A running server, for the error rate.")] = None,
    min_labels: Annotated[int, typer.Option(help="Labelled rows a window needs for quality metrics.")] = 30,
    as_json: JsonFlag = False,
) -> None:
    """Run every check on each window and store the results; alert rules are evaluated."""
    service = workspace(ctx).monitoring
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=as_json) as bar:
        task = bar.add_task(f"monitoring {model}", total=None)

        def report(done: int, total: int, _: object) -> None:
            bar.update(task, completed=done, total=total)

        runs = service.run(model, window=window, since=since, until=until, step=step, data=str(data) if data else None,
                           metrics_url=metrics_url, min_labels=min_labels, progress=report)
    rows = [{"window": str(r.window), "version": r.version, "rows": r.summary["rows"],
             "drifted": f"{r.summary['drifted_columns']}/{r.summary['columns']}",
             "dataset_drift": r.summary["dataset_drift"],
             "failed": sum(p.status == "fail" for p in r.points), "run_id": r.id} for r in runs]
    if as_json:
        print_json([{**row, "points": [p.__dict__ for p in r.points]} for row, r in zip(rows, runs)])
        return
    print_records(rows, f"Monitoring {model}: {len(runs)} window(s)",
                  ["window", "version", "rows", "drifted", "dataset_drift", "failed", "run_id"])
    drifted = [p for p in runs[-1].points if p.status in ("drift", "fail") and p.statistic != "drifted"]
    for point in drifted:
        console.print(f"  [red]{point.status}[/] {point.metric} {point.column} = {point.value:.4g}"
                      f" (threshold {point.threshold})", highlight=False)


@monitor_app.command("history")
def history(
    ctx: typer.Context,
    model: Model,
    metric: Annotated[str | None, typer.Option(help="CHECK.STATISTIC, e.g. model_quality.roc_auc.")] = None,
    column: Annotated[str | None, typer.Option(help="Only this column's series.")] = None,
    since: Annotated[str | None, typer.Option(help="Windows ending after this time.")] = None,
    until: Annotated[str | None, typer.Option(help="Windows starting before this time.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Also draw the series to this PNG.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Stored points of a model's series, in window order."""
    frame = workspace(ctx).monitoring.history(model, metric, column, since, until)
    if plot is not None:
        from conveyor.monitoring.plots import plot_history

        plot_history(frame, plot, f"{model} {metric or ''}".strip())
    if as_json:
        print_json(frame)
        return
    print_frame(frame, f"{model}: {len(frame)} point(s)")
    if plot is not None:
        console.print(f"plot written to {plot}", highlight=False)


@monitor_app.command("report")
def report(
    ctx: typer.Context,
    model: Model,
    out: Annotated[Path, typer.Option(help="File to write.")] = Path("monitoring-report.html"),
    format: Annotated[Literal["html", "json"], typer.Option(help="html (one self-contained page) or json.")] = "html",
) -> None:
    """The newest window's drift per column, data quality, every series over time and alerts."""
    from conveyor.monitoring.report import render_json, render_report
    from conveyor.monitoring.reporting import report_data

    content = report_data(workspace(ctx).monitoring, model)
    out.write_text(render_report(content) if format == "html" else render_json(content))
    console.print(f"report written to {out} ({out.stat().st_size / 1e6:.2f} MB)", highlight=False)


@monitor_app.command("reference")
def reference(
    ctx: typer.Context,
    model: Model,
    data: Annotated[Path, typer.Option(help="Training features (Parquet or CSV).")],
) -> None:
    """Set a version's reference profile from its training data (for models logged without it)."""
    profile = workspace(ctx).monitoring.set_reference(model, str(data))
    console.print(f"reference of {model}: {profile.inputs.rows:,} rows, {len(profile.inputs.columns)} columns",
                  highlight=False)


@monitor_app.command("drift")
def drift(
    reference: Annotated[Path, typer.Argument(help="Reference data (Parquet/CSV, globs allowed).")],
    current: Annotated[Path, typer.Argument(help="Current data.")],
    columns: Annotated[list[str] | None, typer.Option("--column", help="Only these columns (repeatable).")] = None,
    executor: Annotated[str | None, typer.Option(help="ray: split the pass across Ray workers.")] = None,
    report: Annotated[Path | None, typer.Option(help="Also write the HTML report of the comparison here.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Drift between two files, one row per column; no workspace needed."""
    from conveyor.monitoring.drift import drift as compute

    table = compute(str(reference), str(current), columns or None, executor=executor)
    if report is not None:
        from conveyor.monitoring.report import render_report
        from conveyor.monitoring.reporting import drift_report_data

        report.write_text(render_report(drift_report_data(str(reference), str(current))))
    if as_json:
        print_json(table)
        return
    print_frame(table, f"Drift: {table.attrs['drifted_columns']} of {len(table)} column(s) drifted"
                       f"{' (dataset drift)' if table.attrs['dataset_drift'] else ''}")


@metric_app.command("add")
def metric_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Metric name (letters, digits, _).")],
    model: Annotated[str, typer.Option(help="The model whose predictions it reads.")],
    sql: Annotated[str, typer.Option(help="SQL over predictions / feedback / labelled returning one number.")],
    description: Annotated[str, typer.Option(help="What it means.")] = "",
) -> None:
    """Define (or replace) a business metric; the SQL is checked now."""
    metric = workspace(ctx).monitoring.define_metric(name, model, sql, description)
    console.print(f"business metric [bold]{metric.name}[/] of {metric.model} defined", highlight=False)


@metric_app.command("list")
def metric_list(ctx: typer.Context, model: Annotated[str | None, typer.Option()] = None, as_json: JsonFlag = False) -> None:
    """Business metric definitions."""
    rows = [m.__dict__ for m in workspace(ctx).monitoring.business.list(model)]
    if as_json:
        print_json(rows)
        return
    print_records(rows, f"Business metrics ({len(rows)})", ["name", "model", "sql", "description"])


@metric_app.command("delete")
def metric_delete(ctx: typer.Context, name: str) -> None:
    """Remove a business metric."""
    workspace(ctx).monitoring.business.delete(name)
    console.print(f"business metric {name} deleted", highlight=False)


@alerts_app.command("apply")
def alerts_apply(ctx: typer.Context, file: Annotated[Path, typer.Argument(help="YAML file with `rules: [...]`.")]) -> None:
    """Create or replace the alert rules of a file."""
    if not file.is_file():
        raise ValidationError(f"{file}: no such file", field="file")
    rules = workspace(ctx).monitoring.alerts.apply_file(file)
    console.print(f"applied {len(rules)} alert rule(s): {', '.join(r.name for r in rules)}", highlight=False)


@alerts_app.command("list")
def alerts_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Alert rules and where each stands per model."""
    alerts = workspace(ctx).monitoring.alerts
    states = {(s.rule, s.model): s for s in alerts.states()}
    rows = []
    for rule in alerts.list_rules():
        condition = f"{rule.op} {rule.threshold}" if rule.op else f"status = {rule.status}"
        found = [s for (name, _), s in states.items() if name == rule.name] or [None]
        for state in found:
            rows.append({"rule": rule.name, "model": state.model if state else rule.model, "metric": rule.metric,
                         "column": rule.column or "", "condition": condition, "severity": rule.severity,
                         "state": state.state if state else "not evaluated", "since": state.since if state else None})
    if as_json:
        print_json(rows)
        return
    print_records(rows, f"Alert rules ({len(rows)})", ["rule", "model", "metric", "column", "condition", "severity",
                                                       "state", "since"], times=("since",))


@alerts_app.command("deliveries")
def alerts_deliveries(ctx: typer.Context, rule: Annotated[str | None, typer.Option()] = None,
                      as_json: JsonFlag = False) -> None:
    """Alert deliveries and their outcome (retried ones included)."""
    rows = [d.model_dump() for d in workspace(ctx).monitoring.alerts.deliveries(rule=rule)]
    if as_json:
        print_json(rows)
        return
    print_records(rows, f"Deliveries ({len(rows)})", ["created_at", "rule", "model", "event", "channel", "status",
                                                      "attempts", "response_status", "last_error"], times=("created_at",))
