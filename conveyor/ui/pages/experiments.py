"""Experiments and their runs table: server-side pages of 50, sorting by any column, the
search language as a filter, a column picker, and run selection for comparison.

Everything the table shows is in the query string (``filter``, ``order``, ``page``,
``cols``), so a view can be bookmarked and the back button works; htmx swaps the
table alone when any of them changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Annotated, Any
from urllib.parse import quote

import pandas as pd
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from conveyor.errors import ValidationError
from conveyor.ui.rendering import is_htmx, query, render
from conveyor.ui.routing import page_router, workspace_of

PAGE_SIZE = 50
KEYED = ("metrics.", "params.", "tags.")
DEFAULT_METRICS, DEFAULT_PARAMS = 8, 6
PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-./:]*$")
ATTRIBUTES = {"run_name": ("attributes.name", "Run"), "status": ("attributes.status", "Status"),
              "start_time": ("attributes.start_time", "Started"), "user": ("attributes.user", "User")}


def identifier(column: str) -> str:
    """A table column as a search-language identifier: ``metrics.auc``, ``params.`my key```."""
    if column in ATTRIBUTES:
        return ATTRIBUTES[column][0]
    entity, _, key = column.partition(".")
    return f"{entity}.{key}" if PLAIN_KEY.match(key) else f"{entity}.`{key}`"


@dataclass(frozen=True)
class RunsView:
    """What the runs table shows, as carried in the query string."""

    experiment: str
    filter: str = ""
    order: str = ""
    page: int = 1
    cols: tuple[str, ...] | None = None
    picker_open: bool = False

    @classmethod
    def parse(cls, experiment: str, filter: str, order: str, page: str, cols: list[str] | None,
              picker: str) -> RunsView:
        try:
            number = max(1, int(page))
        except ValueError:
            number = 1
        chosen = None if cols is None else tuple(dict.fromkeys(c for item in cols for c in item.split(",") if c))
        return cls(experiment, filter.strip(), order.strip(), number, chosen, picker == "1")

    @property
    def order_column(self) -> tuple[str, bool] | None:
        """The identifier sorted on and whether descending, if the user chose one."""
        if not self.order:
            return None
        ident, _, direction = self.order.rpartition(" ")
        if direction.upper() not in ("ASC", "DESC"):
            return self.order, False
        return ident, direction.upper() == "DESC"

    def url(self, **changes: Any) -> str:
        """This view's URL, with ``changes`` applied (a new filter, order or column set restarts at page 1)."""
        view = replace(self, **changes)
        if "page" not in changes:
            view = replace(view, page=1)
        return query(f"/experiments/{quote(self.experiment)}", filter=view.filter, order=view.order,
                     page=view.page if view.page > 1 else None, cols=",".join(view.cols) if view.cols is not None else None)

    def sort_url(self, column: str) -> str:
        """Sort on ``column``: descending first for metrics and times, ascending otherwise; again flips it."""
        ident = identifier(column)
        current = self.order_column
        if current and current[0] == ident:
            descending = not current[1]
        else:
            descending = column.startswith("metrics.") or column == "start_time"
        return self.url(order=f"{ident} {'DESC' if descending else 'ASC'}")

    def sorted_on(self, column: str) -> str:
        """``asc``, ``desc`` or ``""``: how the table is sorted on ``column`` (newest first by default)."""
        current = self.order_column
        if current is None:
            return "desc" if column == "start_time" else ""
        return ("desc" if current[1] else "asc") if current[0] == identifier(column) else ""


def keyed_columns(frame: pd.DataFrame) -> list[str]:
    """The frame's metric, param and tag columns, in that order."""
    return [c for prefix in KEYED for c in frame.columns if c.startswith(prefix)]


def default_columns(available: list[str]) -> tuple[str, ...]:
    """Shown until the user picks: the first metrics and params (tags only on request)."""
    metrics = [c for c in available if c.startswith("metrics.")][:DEFAULT_METRICS]
    params = [c for c in available if c.startswith("params.")][:DEFAULT_PARAMS]
    return tuple(metrics + params)


def search_page(request: Request, view: RunsView) -> tuple[list[dict[str, Any]], bool, list[str], str | None]:
    """One page of runs: rows, whether a next page exists, the keyed columns seen, an error."""
    tracking = workspace_of(request).tracking
    try:
        frame = tracking.search_runs(
            view.experiment, filter=view.filter or None, order_by=[view.order] if view.order else None,
            max_results=PAGE_SIZE + 1, offset=(view.page - 1) * PAGE_SIZE,
        )
    except ValidationError as error:
        return [], False, [], error.message
    rows = frame.iloc[:PAGE_SIZE].astype(object).where(frame.iloc[:PAGE_SIZE].notna(), None).to_dict("records")
    return rows, len(frame) > PAGE_SIZE, keyed_columns(frame), None


def build_router() -> APIRouter:
    router = page_router()

    @router.get("/experiments")
    def experiments(request: Request) -> Response:
        tracking = workspace_of(request).tracking
        found = tracking.list_experiments()[::-1]
        return render(request, "experiments.html", section="experiments", experiments=found)

    @router.get("/experiments/{name:path}")
    def experiment(
        request: Request, name: str, filter: str = "", order: str = "", page: str = "1",
        cols: Annotated[list[str] | None, Query()] = None, picker: str = "",
    ) -> Response:
        found = workspace_of(request).tracking.get_experiment(name)
        view = RunsView.parse(found.name, filter, order, page, cols, picker)
        rows, has_next, seen, error = search_page(request, view)
        available = list(dict.fromkeys([*seen, *(view.cols or ())]))
        shown = view.cols if view.cols is not None else default_columns(seen)
        context = {"experiment": found, "view": view, "rows": rows,
                   "has_next": has_next, "shown": shown, "available": available, "error": error,
                   "attributes": ATTRIBUTES, "first": (view.page - 1) * PAGE_SIZE + 1}
        if not is_htmx(request):
            return render(request, "experiment.html", section="experiments", **context)
        response = render(request, "_runs.html", **context)
        response.headers["HX-Push-Url"] = view.url(page=view.page)  # the view's canonical address
        return response

    return router
