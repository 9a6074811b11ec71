"""A validation report as one self-contained HTML page: inline CSS, charts as base64 PNG."""

from __future__ import annotations

from functools import cache

import jinja2

from conveyor.core.html import package_template
from conveyor.governance.validation import plots
from conveyor.governance.validation.formatting import number, timestamp
from conveyor.governance.validation.schemas import ValidationReport


@cache
def _template() -> jinja2.Template:
    return package_template("conveyor.governance.validation", "report.html.j2", {"number": number, "timestamp": timestamp})


def _performance_plots(report: ValidationReport) -> list[tuple[str, str]]:
    found = []
    if report.curves.roc:
        found.append(("ROC curve", plots.roc_plot(report.curves)))
    if report.calibration:
        found.append(("Calibration", plots.calibration_plot(report.calibration)))
    if report.curves.sample is not None:
        found.append(("Predicted against actual", plots.actual_vs_predicted_plot(report.curves.sample)))
    return found


def render_report_html(report: ValidationReport) -> str:
    """Render ``report`` as one HTML file that needs nothing else to display.

    It shows the checks with pass/fail, the metrics of candidate and champion and
    their difference, ROC and calibration (classification) or predicted against
    actual (regression), segment and period charts, and PSI per column against the
    threshold. Everything comes from the report, so a report loaded back from JSON
    renders the same.
    """
    overall = report.metrics.get(report.primary_metric)
    groupings = [
        (heading, result, plots.groups_plot(result, report.primary_metric, overall))
        for heading, result in (("Segments", report.segments), ("Periods", report.periods))
        if result is not None and result.groups
    ]
    psi_note = "No reference profile was given, so drift was not measured."
    if report.psi is not None and not report.psi:
        psi_note = "No column of the reference profile is in the data."
    return _template().render(
        report=report,
        metric_rows=report.comparison(),
        performance=_performance_plots(report),
        groupings=groupings,
        psi_image=plots.psi_plot(report.psi, report.thresholds.max_psi) if report.psi else None,
        psi_note=psi_note,
    )
