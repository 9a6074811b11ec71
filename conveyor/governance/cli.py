"""``conveyor audit``: read and verify the tamper-evident audit log."""

from __future__ import annotations

from typing import Annotated

import typer

from conveyor.cli_support import JsonFlag, console, print_json, print_records, workspace
from conveyor.errors import IntegrityError

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
