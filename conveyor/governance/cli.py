"""``conveyor audit``, ``users``, ``projects`` and ``tokens``: thin over the audit log and
``IdentityService``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.markup import escape

from conveyor.cli_support import JsonFlag, console, print_json, print_records, workspace
from conveyor.core.db.base import now_ms
from conveyor.errors import IntegrityError, ValidationError
from conveyor.governance.permissions import ROLES
from conveyor.governance.schemas import User

audit_app = typer.Typer(help="The append-only, hash-chained audit log.", no_args_is_help=True)


@audit_app.command("list")
def list_entries(
    ctx: typer.Context,
    entity: Annotated[str | None, typer.Option(help="A model name, NAME/VERSION or NAME@ALIAS.")] = None,
    action: Annotated[str | None, typer.Option(help="e.g. alias.set, approval.approved.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """List audit entries, newest first."""
    entries = [entry.model_dump() for entry in workspace(ctx).audit.list_entries(entity, action, limit)]
    if as_json:
        print_json(entries)
        return
    for entry in entries:
        entry["change"] = f"{entry['before'] or ''} → {entry['after'] or ''}"
    print_records(entries, "Audit log", ["seq", "at", "actor", "action", "entity", "change"], times=("at",))


@audit_app.command("verify")
def verify(
    ctx: typer.Context,
    expect_head: Annotated[str | None, typer.Option(help="SEQ:HASH from an earlier verify, kept elsewhere.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check the hash chain; exit 6 if any entry was edited or removed."""
    result = workspace(ctx).audit.verify(expect_head)
    if as_json:
        print_json(result.model_dump())
    elif result.ok:
        console.print(f"[green]audit log intact[/]: {result.entries} entries, head {result.head_seq}:{result.head_hash}")
    if not result.ok:
        raise IntegrityError(f"audit log tampered: {'; '.join(result.problems[:3])}" + (
            f" (and {len(result.problems) - 3} more)" if len(result.problems) > 3 else ""
        ))


# users, projects and API tokens ------------------------------------------------------------

users_app = typer.Typer(help="Users and their global roles (platform-admin only, but for the first user).",
                        no_args_is_help=True)
projects_app = typer.Typer(help="Projects, and the roles users hold in them.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens: how a client signs in to a Conveyor server.", no_args_is_help=True)

UserName = Annotated[str, typer.Argument(help="User name.")]
ProjectName = Annotated[str, typer.Argument(help="Project name.")]
Roles = Annotated[list[str], typer.Option("--role", "-r", help=f"A role ({', '.join(ROLES)}); repeat for several.")]
USER_COLUMNS = ["name", "display_name", "roles", "disabled", "created_at", "created_by"]
TOKEN_COLUMNS = ["id", "user", "name", "prefix", "state", "created_at", "expires_at", "last_used_at"]

_EXPIRES = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_expires(text: str) -> timedelta | None:
    """``--expires``: ``12h``, ``30d``, ``1w`` (also ``90m``), or ``never``.

    Raises:
        ValidationError: anything else (field ``expires``).
    """
    value = text.strip().lower()
    if value == "never":
        return None
    match = _EXPIRES.match(value)
    if match is None or int(match[1]) == 0:
        raise ValidationError(f"--expires {text!r}: give a duration such as 12h, 30d or 1w, or 'never'",
                              field="expires")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def _iso_ms(ms: int | None) -> str:
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _user_record(user: User) -> dict[str, Any]:
    return {**user.model_dump(), "roles": ", ".join(user.roles)}


@users_app.command("create")
def create_user(
    ctx: typer.Context,
    name: UserName,
    roles: Roles = [],  # noqa: B006  typer reads the default
    display_name: Annotated[str | None, typer.Option(help="The person's full name.")] = None,
) -> None:
    """Create a user with global roles; the workspace's first user may be created by anyone."""
    user = workspace(ctx).identity.create_user(name, roles, display_name)
    console.print(f"created user [bold]{escape(user.name)}[/] with roles {', '.join(user.roles) or 'none'}",
                  highlight=False)


@users_app.command("list")
def list_users(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every user with their global roles."""
    found = workspace(ctx).identity.list_users()
    if as_json:
        print_json([user.model_dump() for user in found])
        return
    print_records([_user_record(user) for user in found], f"Users ({len(found)})", USER_COLUMNS, times=("created_at",))


@users_app.command("roles")
def set_roles(ctx: typer.Context, name: UserName, roles: Annotated[list[str], typer.Option(
        "--role", "-r", help=f"A role ({', '.join(ROLES)}); repeat for several.")]) -> None:
    """Replace a user's global roles (their project grants stay)."""
    user = workspace(ctx).identity.set_roles(name, roles)
    console.print(f"user [bold]{escape(user.name)}[/] now holds {', '.join(user.roles) or 'no role'}", highlight=False)


@users_app.command("disable")
def disable_user(ctx: typer.Context, name: UserName) -> None:
    """Stop a user from acting: their API tokens are refused."""
    workspace(ctx).identity.disable_user(name)
    console.print(f"disabled user [bold]{escape(name)}[/]", highlight=False)


@projects_app.command("create")
def create_project(
    ctx: typer.Context,
    name: ProjectName,
    description: Annotated[str, typer.Option(help="What the project is for.")] = "",
) -> None:
    """Create a project, where users may be granted roles beyond their global ones."""
    project = workspace(ctx).identity.create_project(name, description)
    console.print(f"created project [bold]{escape(project.name)}[/]", highlight=False)


@projects_app.command("list")
def list_projects(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every project."""
    found = [project.model_dump() for project in workspace(ctx).identity.list_projects()]
    if as_json:
        print_json(found)
        return
    print_records(found, f"Projects ({len(found)})", ["name", "description", "created_at", "created_by"],
                  times=("created_at",))


@projects_app.command("grant")
def grant(ctx: typer.Context, project: ProjectName, user: UserName,
          role: Annotated[str, typer.Option("--role", "-r", help=f"One of {', '.join(ROLES)}.")]) -> None:
    """Let a user hold a role in a project."""
    granted = workspace(ctx).identity.grant(project, user, role)
    console.print(f"[bold]{escape(user)}[/] holds {granted.role} in project [bold]{escape(project)}[/]",
                  highlight=False)


@projects_app.command("revoke")
def revoke_grant(ctx: typer.Context, project: ProjectName, user: UserName,
                 role: Annotated[str, typer.Option("--role", "-r", help="The role to take away.")]) -> None:
    """Take a role in a project away from a user."""
    workspace(ctx).identity.revoke_grant(project, user, role)
    console.print(f"[bold]{escape(user)}[/] no longer holds {escape(role)} in project [bold]{escape(project)}[/]",
                  highlight=False)


@projects_app.command("grants")
def list_grants(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Argument(help="Only this project's grants.")] = None,
    user: Annotated[str | None, typer.Option(help="Only this user's grants.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """The roles users hold in projects."""
    found = [item.model_dump() for item in workspace(ctx).identity.list_grants(project, user)]
    if as_json:
        print_json(found)
        return
    print_records(found, f"Grants ({len(found)})", ["project", "user", "role", "created_at", "created_by"],
                  times=("created_at",))


@tokens_app.command("create")
def create_token(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option(help="Whose token (default: you; others need platform-admin).")] = None,
    name: Annotated[str, typer.Option(help="A label to tell your tokens apart, e.g. ci or laptop.")] = "",
    expires: Annotated[str, typer.Option(help="How long it is valid: 12h, 30d, 1w, or never (default 30d).")] = "30d",
) -> None:
    """Create an API token and print it, this once: only its hash is kept."""
    expires_in = parse_expires(expires)
    token, info = workspace(ctx).identity.create_token(user, name, expires_in)
    until = f"expires {_iso_ms(info.expires_at)}" if info.expires_at else "never expires"
    console.print(f"API token [bold]{info.id}[/] of user [bold]{escape(info.user)}[/] ({until}):", highlight=False)
    typer.echo(token)
    console.print("[yellow]Copy it now: it is shown only once.[/] Use it as CONVEYOR_TOKEN or "
                  "'Authorization: Bearer <token>'.", highlight=False)


@tokens_app.command("list")
def list_tokens(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option(help="Whose tokens (default: yours; others need platform-admin).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """API tokens, newest first: never their secret."""
    found = workspace(ctx).identity.list_tokens(user)
    if as_json:
        print_json([info.model_dump() for info in found])
        return
    now = now_ms()
    rows = [{**info.model_dump(), "state": "revoked" if info.revoked_at else ("active" if info.active(now) else "expired")}
            for info in found]
    print_records(rows, f"API tokens ({len(rows)})", TOKEN_COLUMNS, times=("created_at", "expires_at", "last_used_at"))


@tokens_app.command("revoke")
def revoke_token(ctx: typer.Context, token_id: Annotated[str, typer.Argument(help="The token's id (tokens list).")]) -> None:
    """Revoke an API token: refused from now on (by running servers within seconds)."""
    info = workspace(ctx).identity.revoke_token(token_id)
    console.print(f"revoked API token [bold]{info.id}[/] of user [bold]{escape(info.user)}[/]", highlight=False)
