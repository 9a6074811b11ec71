"""The audit log, newest first in pages of 50, and whether its hash chain verifies (checked
after the page loads: verification walks the whole chain)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from conveyor.ui.rendering import is_htmx, render
from conveyor.ui.routing import page_router, workspace_of

PAGE_SIZE = 50
LONG = 48


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "), default=str)
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        return text[:12] + "…"  # a sha256
    return text if len(text) <= LONG else text[: LONG - 1] + "…"


def changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[tuple[str, str | None, str | None]]:
    """An entry's change as ``(field, old, new)`` rows, long values cut short."""
    before, after = before or {}, after or {}
    rows = []
    for key in dict.fromkeys([*after, *before]):
        old = _short(before[key]) if key in before and before[key] is not None else None
        new = _short(after[key]) if key in after and after[key] is not None else None
        if old is not None or new is not None:
            rows.append((key, old, new))
    return rows


def _seq(value: str) -> int | None:
    return int(value) if value.isdigit() else None


def audit_page(request: Request, entity: str, action: str, before: int | None, after: int | None) -> dict[str, Any]:
    """Up to 50 entries, newest first: the newest, those older than ``before``, or those just newer than ``after``."""
    log = workspace_of(request).audit
    filters = {"entity": entity or None, "action": action or None}
    if after is not None:
        found = log.list_entries(**filters, after=after, newest_first=False, limit=PAGE_SIZE + 1)
        entries, newer, older = found[:PAGE_SIZE][::-1], len(found) > PAGE_SIZE, True
    else:
        found = log.list_entries(**filters, before=before, limit=PAGE_SIZE + 1)
        entries, newer, older = found[:PAGE_SIZE], before is not None, len(found) > PAGE_SIZE
    return {"entries": [(entry, changes(entry.before, entry.after)) for entry in entries], "entity": entity,
            "action": action, "newer": entries[0].seq if newer and entries else None,
            "older": entries[-1].seq if older and entries else None}


def build_router() -> APIRouter:
    router = page_router()

    @router.get("/audit")
    def audit(request: Request, entity: str = "", action: str = "", before: str = "", after: str = "") -> Response:
        page = audit_page(request, entity.strip(), action.strip(), _seq(before), _seq(after))
        if is_htmx(request):
            return render(request, "_audit_entries.html", **page)
        return render(request, "audit.html", section="audit", **page)

    @router.get("/audit/verify")
    def verify(request: Request) -> Response:
        return render(request, "_audit_verify.html", result=workspace_of(request).audit.verify())

    return router
