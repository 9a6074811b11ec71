"""Journeys through the web UI in a real browser (headless Chromium driven by Playwright)
against the platform server on a seeded workspace, signed in with real API tokens.

Each journey ends with a 1280x800 screenshot in ``docs/screenshots/``. Without Playwright
or Chromium the journeys skip, unless ``CONVEYOR_REQUIRE_SERVICES=1``, where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ui_support import (
    DRIFT_RULE,
    EXPERIMENT,
    REGISTERED,
    Seeded,
    png_size,
    seed,
    serving,
)

REQUIRE_SERVICES = os.environ.get("CONVEYOR_REQUIRE_SERVICES") == "1"
CHROMIUM = os.environ.get("CONVEYOR_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}
TIMEOUT_MS = 15_000

pytestmark = pytest.mark.slow


def _unavailable(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's, not a Playwright download)."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (pip install playwright)")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        _unavailable(f"Chromium is not installed at {CHROMIUM}")
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        except Error as error:
            _unavailable(f"Chromium at {CHROMIUM} does not start: {str(error).splitlines()[0]}")
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    found = seed(tmp_path_factory.mktemp("ui-workspace"))
    yield found
    found.workspace.close()


@pytest.fixture(scope="module")
def base_url(seeded: Seeded) -> Iterator[str]:
    from conveyor.server.app import create_app

    with serving(create_app(seeded.workspace)) as url:
        yield url


@pytest.fixture(scope="module")
def context(browser: Any, base_url: str) -> Iterator[Any]:
    """One browser context for the journeys, so plotly.js is fetched and compiled once."""
    shared = browser.new_context(viewport=VIEWPORT, base_url=base_url)
    yield shared
    shared.close()


@pytest.fixture
def page(context: Any) -> Iterator[Any]:
    """A page of a browser that is signed out (no cookie); any script error fails the test."""
    context.clear_cookies()
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    opened.script_errors = errors  # a test that provokes an error response clears what it expected
    yield opened
    opened.close()
    assert errors == [], errors


def sign_in(page: Any, token: str, start: str) -> None:
    """Open ``start``, get sent to the login page, paste the token and come back to ``start``."""
    page.goto(start)
    page.wait_for_url(re.compile(r"/login\?next="))
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: url.endswith(start))


def drawn(page: Any, selector: str) -> int:
    """How many charts under ``selector`` plotly has drawn (an SVG or a canvas in each)."""
    page.wait_for_function(
        """selector => { const charts = document.querySelectorAll(selector);
            return charts.length > 0 && [...charts].every(c => c.querySelector('svg.main-svg, canvas')); }""",
        arg=selector)
    return page.locator(selector).count()


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.wait_for_timeout(300)  # let plotly finish its transitions
    page.screenshot(path=str(path))
    assert png_size(path.read_bytes()) == (1280, 800)


def runs_table(page: Any) -> list[dict[str, str]]:
    """The rows of the runs table: run name, and each metric/param cell by its column title."""
    titles = [page.locator("table.runs thead th").nth(i).get_attribute("title") or ""
              for i in range(page.locator("table.runs thead th").count())]
    rows = []
    for row in page.locator("table.runs tbody tr").all():
        cells = row.locator("td").all_inner_texts()
        rows.append({"run": cells[1], **{title: cell for title, cell in zip(titles, cells) if title}})
    return rows


def test_find_the_best_run_by_sorting_and_filtering_then_see_its_metric_charts(page: Any, seeded: Seeded) -> None:
    sign_in(page, seeded.tokens["ann"], "/experiments")
    page.click(f"a:text-is('{EXPERIMENT}')")
    page.wait_for_selector("table.runs tbody tr")
    assert len(runs_table(page)) == len(seeded.runs)

    page.click("th[title='metrics.auc'] a.sort")
    page.wait_for_url(re.compile(r"order=metrics\.auc"))
    page.wait_for_selector("th[title='metrics.auc'] a.sort.desc")
    aucs = [float(row["metrics.auc"]) for row in runs_table(page)]
    assert aucs == sorted(aucs, reverse=True)

    page.click("details.picker summary")
    page.uncheck("details.picker input[value='metrics.fit_seconds']")
    page.wait_for_url(re.compile(r"cols="))
    assert page.locator("th[title='metrics.fit_seconds']").count() == 0
    assert page.locator("details.picker[open]").count() == 1  # the picker stays open while choosing
    page.click("details.picker summary")

    page.fill("input[name=filter]", "metrics.auc >")
    page.press("input[name=filter]", "Enter")
    assert "unexpected end of input" in page.locator("#runs .inline-error").inner_text()

    page.fill("input[name=filter]", "params.model = 'lgbm' and metrics.auc > 0.85")
    page.press("input[name=filter]", "Enter")
    page.wait_for_url(re.compile(r"filter=params\.model"))
    page.wait_for_selector("#runs tbody tr")
    rows = runs_table(page)
    assert rows and all(row["params.model"] == "lgbm" and float(row["metrics.auc"]) > 0.85 for row in rows)
    assert "order=metrics.auc" in page.url and "cols=" in page.url  # the sort and columns survived the filter
    assert page.locator("th[title='metrics.fit_seconds']").count() == 0
    best = rows[0]
    assert float(best["metrics.auc"]) == pytest.approx(seeded.best_auc, abs=1e-4)

    page.click(f"table.runs a:text-is('{best['run']}')")
    page.wait_for_url(re.compile(rf"/runs/{seeded.best_run}$"))
    assert drawn(page, "#metric-charts .chart") >= 2
    assert page.locator(".chart-card h3").all_inner_texts()[:2] == ["train_logloss", "val_auc"]
    screenshot(page, "find-best-run")


def test_compare_two_selected_runs_with_overlaid_charts_and_parallel_coordinates(page: Any, seeded: Seeded) -> None:
    sign_in(page, seeded.tokens["ann"], f"/experiments/{EXPERIMENT}?order=metrics.auc%20DESC")
    page.wait_for_selector("table.runs tbody tr")
    compare = page.locator("#compare-runs")
    assert compare.is_disabled()
    first, second = page.locator("input.pick-run").nth(0), page.locator("input.pick-run").nth(1)
    chosen = [first.get_attribute("value"), second.get_attribute("value")]
    first.check()
    second.check()
    assert compare.inner_text() == "Compare selected (2)"
    compare.click()
    page.wait_for_url(re.compile(r"/compare\?runs="))
    assert page.url.endswith(f"runs={chosen[0]},{chosen[1]}")
    assert page.locator("table.compare tr.differs").count() >= 2
    assert drawn(page, "#parallel .chart") == 1
    assert page.locator("#parallel .chart .parcoords").count() == 1
    assert drawn(page, "#overlay-charts .chart") == 2  # the metrics logged at every step
    overlaid = page.locator("#overlay-charts .chart-card:has(h3:text-is('val_auc')) .scatterlayer .trace")
    assert overlaid.count() == 2  # one line per run
    screenshot(page, "compare-runs")


def test_a_validator_approves_a_pending_version_and_sees_its_status_change(page: Any, seeded: Seeded) -> None:
    page.goto(f"/models/{REGISTERED}/versions/2")
    page.wait_for_url(re.compile(r"/login"))
    page.fill("#token", "cvy_not-a-real-token")
    page.click("button[type=submit]")
    assert "unknown" in page.locator(".login-box .inline-error").inner_text()
    assert page.script_errors == ["Failed to load resource: the server responded with a status of 401 (Unauthorized)"]
    page.script_errors.clear()

    sign_in(page, seeded.tokens["val"], f"/models/{REGISTERED}/versions/2")
    panel = page.locator("#approval")
    assert panel.locator(".status-line .badge").first.inner_text() == "validated"
    assert "approval requested" in panel.inner_text()
    panel.locator("input[name=comment]").fill("Validation report and model card reviewed")
    panel.locator("button.approve").click()
    page.wait_for_selector("#approval .status-line .badge.approved")
    assert page.locator("#lineage-status").inner_text() == "approved"  # swapped out of band
    assert "version 2 (approved)" in page.locator("#model-card-body h1").inner_text()
    assert "Validation report and model card reviewed" in page.locator("#approval .timeline").inner_text()
    assert page.locator("#approval button.approve").count() == 0
    assert seeded.workspace.registry.get_model_version(REGISTERED, 2).status.value == "approved"
    screenshot(page, "approve-version")


def test_monitoring_a_model_shows_its_drift_alert(page: Any, seeded: Seeded) -> None:
    sign_in(page, seeded.tokens["ann"], "/monitoring")
    row = page.locator("table tbody tr", has=page.locator("a:text-is('credit')"))
    assert "1 firing" in row.inner_text()
    row.locator("a:text-is('credit')").click()
    page.wait_for_url(re.compile(r"/monitoring/credit$"))
    alert = page.locator("#alerts tr.alert-row", has=page.locator(f"strong:text-is('{DRIFT_RULE}')"))
    assert alert.locator(".badge.firing").count() == 1
    assert "dataset_drift.share_drifted >= 0.5" in alert.inner_text()
    assert drawn(page, "#drift-over-time .chart") == 1
    assert page.locator("#drift-over-time .heatmaplayer").count() == 1
    screenshot(page, "drift-alert")
