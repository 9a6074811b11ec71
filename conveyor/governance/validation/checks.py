"""The rules a validation report applies, one function per check.

``"fail"`` checks decide ``ValidationReport.passed``; ``"warn"`` checks draw a
reviewer's attention without blocking. A rule that cannot be assessed (no
champion, no reference profile) passes and says why in its detail, so the report
always lists the same checks for the same inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conveyor.governance.validation.schemas import (
    Check,
    SegmentResult,
    ValidationThresholds,
)

if TYPE_CHECKING:
    from conveyor.governance.validation.tasks import Task


def rows_check(rows: int, thresholds: ValidationThresholds) -> Check:
    """Enough labelled rows to trust the metrics."""
    return Check(
        name="min_rows",
        passed=rows >= thresholds.min_rows,
        severity="fail",
        detail=f"{rows} rows with a target; at least {thresholds.min_rows} required",
    )


def target_check(target: str, missing: int) -> Check:
    """The target has a value on every row; rows without one are left out of every metric."""
    detail = f"no missing values in {target!r}"
    if missing:
        detail = f"{missing} rows miss {target!r}; they are left out of the metrics"
    return Check(name="target_complete", passed=missing == 0, severity="fail", detail=detail)


def primary_check(task: Task, metrics: dict[str, float]) -> Check:
    """The primary metric is defined on the data (ROC AUC is not when a class never occurs)."""
    value = metrics.get(task.primary)
    detail = f"{task.primary} = {value:.4g}" if value is not None else f"{task.primary} is undefined on this data"
    return Check(name="primary_metric", passed=value is not None, severity="fail", detail=detail)


def champion_check(task: Task, metrics: dict[str, float], champion: dict[str, float] | None,
                   champion_version: int | None, thresholds: ValidationThresholds) -> Check:
    """The candidate's primary metric is not worse than the champion's beyond ``max_degradation``."""
    name, severity = "champion_comparison", "fail"
    if champion is None:
        return Check(name=name, passed=True, severity=severity, detail="no champion to compare with")
    mine, theirs = metrics.get(task.primary), champion.get(task.primary)
    if mine is None or theirs is None:
        return Check(name=name, passed=False, severity=severity,
                     detail=f"{task.primary} is undefined for the candidate or the champion")
    worse = task.degradation(mine, theirs)
    label = f"champion v{champion_version}" if champion_version is not None else "champion"
    return Check(
        name=name,
        passed=worse <= thresholds.max_degradation,
        severity=severity,
        detail=f"{task.primary} {mine:.4g} vs {label} {theirs:.4g}: {task.degradation_label} {worse:.4g}, "
        f"at most {thresholds.max_degradation:.4g} allowed",
    )


def psi_check(psi: dict[str, float] | None, thresholds: ValidationThresholds) -> Check:
    """No column drifted from the reference profile beyond ``max_psi``."""
    name, severity = "population_stability", "fail"
    if psi is None:
        return Check(name=name, passed=True, severity=severity, detail="no reference profile to compare with")
    if not psi:
        return Check(name=name, passed=False, severity=severity,
                     detail="no column of the reference profile is in the data")
    worst = max(psi, key=psi.__getitem__)
    drifted = sorted(c for c, v in psi.items() if v > thresholds.max_psi)
    detail = f"max PSI {psi[worst]:.4g} ({worst!r}), at most {thresholds.max_psi:.4g} allowed"
    if drifted:
        detail += f"; drifted: {', '.join(drifted)}"
    return Check(name=name, passed=not drifted, severity=severity, detail=detail)


def mape_check(zero_targets: int) -> Check:
    """MAPE is undefined where the target is zero; say how many rows it leaves out."""
    detail = "MAPE uses every row"
    if zero_targets:
        detail = f"MAPE leaves out {zero_targets} rows whose target is 0"
    return Check(name="mape_coverage", passed=zero_targets == 0, severity="warn", detail=detail)


def stability_check(name: str, result: SegmentResult, task: Task, thresholds: ValidationThresholds) -> Check:
    """No group is flagged by the stability rule (see ``segments.py``)."""
    assessed = [g for g in result.groups
                if g.rows >= thresholds.min_segment_rows and g.metrics.get(task.primary) is not None]
    unstable = [g.value for g in result.groups if g.unstable]
    detail = f"{len(assessed)} of {len(result.groups)} groups of {result.column!r} assessed"
    if len(assessed) < len(result.groups):
        detail += f" (the rest have under {thresholds.min_segment_rows} rows or no {task.primary})"
    if unstable:
        detail += f"; {task.primary} clearly worse than overall in: {', '.join(unstable)}"
    return Check(name=name, passed=not unstable, severity="warn", detail=detail)
