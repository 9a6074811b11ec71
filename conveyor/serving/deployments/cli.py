"""``conveyor deploy``: thin over the deployment service."""

from __future__ import annotations

from typing import Annotated

import typer

from conveyor.cli_support import JsonFlag, console, print_json, print_records, workspace
from conveyor.errors import ValidationError

deploy_app = typer.Typer(help="Deployments: traffic policies over a model's aliases and versions.", no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="Deployment name.")]
Traffic = Annotated[list[str] | None, typer.Option(
    "--traffic", "-t", help="TARGET=PERCENT, repeated or comma separated (champion=90,challenger=10); a target is an "
    "alias (followed as it moves) or a version (3 or v3). Default: champion=100.")]
Shadow = Annotated[list[str] | None, typer.Option(help="Target that sees every request and is only logged (policy shadow).")]
Key = Annotated[str | None, typer.Option(help="Field whose hash assigns rows to variants (policy ab).")]
Policy = Annotated[str, typer.Option(help="single, canary, shadow or ab.")]


def _spec(model: str, policy: str, traffic: list[str] | None, shadow: list[str] | None, key: str | None):  # noqa: ANN202
    from pydantic import ValidationError as PydanticError

    from conveyor.serving.deployments.spec import DeploymentSpec, parse_traffic

    try:
        return DeploymentSpec(model=model, policy=policy, traffic=parse_traffic(traffic or ["champion"]),
                              shadow=shadow or [], key=key)
    except PydanticError as exc:
        error = exc.errors()[0]
        message = error["msg"].removeprefix("Value error, ")
        if error["loc"]:
            field = str(error["loc"][0])
        else:
            field, _, message = message.partition(": ")
        raise ValidationError(f"--{field}: {message}", field=field) from None


def _summary(deployment) -> str:  # noqa: ANN001
    spec = deployment.spec
    split = ", ".join(f"{r.target}={r.weight:g}% (v{deployment.resolved[r.target]})" for r in spec.traffic)
    shadows = "".join(f", shadow {t} (v{deployment.resolved[t]})" for t in spec.shadow)
    key = f", key {spec.key}" if spec.key else ""
    return f"{deployment.name} revision {deployment.revision}: {spec.model} {spec.policy} {split}{shadows}{key}"


@deploy_app.command("create")
def create(ctx: typer.Context, name: Name,
           model: Annotated[str, typer.Option(help="Registered model to serve.")],
           policy: Policy = "single", traffic: Traffic = None, shadow: Shadow = None, key: Key = None) -> None:
    """Create a deployment: serve it with `conveyor serve --deployment NAME`."""
    deployment = workspace(ctx).deployments.create(name, _spec(model, policy, traffic, shadow, key))
    console.print(f"created {_summary(deployment)}")


@deploy_app.command("update")
def update(ctx: typer.Context, name: Name,
           model: Annotated[str | None, typer.Option(help="Registered model (default: unchanged).")] = None,
           policy: Annotated[str | None, typer.Option(help="single, canary, shadow or ab (default: unchanged).")] = None,
           traffic: Traffic = None, shadow: Shadow = None, key: Key = None) -> None:
    """Change the policy, split, shadows or key: running servers swap within a poll interval."""
    service = workspace(ctx).deployments
    current = service.get(name).spec
    policy = policy or current.policy
    if shadow is None and policy == "shadow":
        shadow = current.shadow
    if key is None and policy == "ab":
        key = current.key
    spec = _spec(model or current.model, policy, traffic or [f"{r.target}={r.weight:g}" for r in current.traffic],
                 shadow, key)
    console.print(f"updated {_summary(service.update(name, spec))}")


@deploy_app.command("rollback")
def rollback(ctx: typer.Context, name: Name) -> None:
    """Serve again what the previous revision served, with its versions pinned."""
    console.print(f"rolled back: {_summary(workspace(ctx).deployments.rollback(name))}")


@deploy_app.command("list")
def list_deployments(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every deployment at its current revision."""
    found = workspace(ctx).deployments.list()
    if as_json:
        print_json([d.model_dump(mode="json") for d in found])
        return
    rows = [{"name": d.name, "model": d.spec.model, "policy": d.spec.policy, "revision": d.revision,
             "traffic": ", ".join(f"{r.target}={r.weight:g}%→v{d.resolved[r.target]}" for r in d.spec.traffic),
             "shadow": ", ".join(f"{t}→v{d.resolved[t]}" for t in d.spec.shadow), "updated": d.created_at}
            for d in found]
    print_records(rows, f"Deployments ({len(rows)})", list(rows[0]) if rows else ["name"], times=("updated",))


@deploy_app.command("show")
def show(ctx: typer.Context, name: Name, as_json: JsonFlag = False) -> None:
    """A deployment's revisions, oldest first: what changed, why and who."""
    service = workspace(ctx).deployments
    service.sync(name)
    revisions = service.history(name)
    if as_json:
        print_json([d.model_dump(mode="json") for d in revisions])
        return
    rows = [{"revision": d.revision, "policy": d.spec.policy,
             "serves": ", ".join(f"{t}→v{v}" for t, v in d.resolved.items()), "reason": d.reason, "by": d.actor,
             "at": d.created_at} for d in revisions]
    print_records(rows, f"Deployment {name}", list(rows[0]), times=("at",))
