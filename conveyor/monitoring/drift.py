"""Data and prediction drift: one row per column, the test chosen by type and size.

Defaults follow what practitioners use (and Evidently's presets): with at most
``SMALL_SAMPLE`` rows on either side, Kolmogorov-Smirnov (numeric) and chi-square
(categorical) at p < 0.05; beyond, normalised Wasserstein (numeric) and
Jensen-Shannon (categorical) at 0.1, because with millions of rows every p-value is
tiny and only the size of the shift matters. Tests and thresholds can be set per
column; the dataset drifts when the share of drifted columns reaches ``drift_share``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from conveyor.errors import ValidationError
from conveyor.monitoring.profiling import (
    GRID,
    arrow_types,
    choose_columns,
    current_plan,
    profile_relation,
    reference_plan,
)
from conveyor.monitoring.sketch import NumericSketch, Profile
from conveyor.monitoring.sources import relation
from conveyor.monitoring.stattests import (
    CATEGORICAL,
    DEFAULT_THRESHOLDS,
    NUMERIC,
    P_VALUE_TESTS,
)

SMALL_SAMPLE = 1000
DRIFT_COLUMNS = ["column", "type", "test", "statistic", "p_value", "threshold", "drifted"]


@dataclass(frozen=True)
class DriftOptions:
    """How to test: per-column tests and thresholds, and the dataset-level rule."""

    tests: Mapping[str, str] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    drift_share: float = 0.5

    def __post_init__(self) -> None:
        known = {*NUMERIC, *CATEGORICAL}
        for column, test in self.tests.items():
            if test not in known:
                raise ValidationError(f"column '{column}': unknown test '{test}' (known: {', '.join(sorted(known))})", field="tests")
        for column, threshold in self.thresholds.items():
            if not isinstance(threshold, int | float) or threshold < 0:
                raise ValidationError(f"column '{column}': threshold must be a non-negative number", field="thresholds")
        if not 0 < self.drift_share <= 1:
            raise ValidationError("drift_share must be in (0, 1]", field="drift_share")


def default_test(kind: str, reference_rows: int, current_rows: int) -> str:
    """The test for a column of ``kind`` with these sample sizes."""
    small = min(reference_rows, current_rows) <= SMALL_SAMPLE
    if kind == "numeric":
        return "ks" if small else "wasserstein"
    return "chisquare" if small else "jensenshannon"


def compare(reference: Profile, current: Profile, options: DriftOptions | None = None) -> pd.DataFrame:
    """Test every column the two profiles share; ``attrs`` carry the dataset verdict."""
    options = options or DriftOptions()
    rows: list[dict[str, Any]] = []
    for name, expected in reference.columns.items():
        actual = current.columns.get(name)
        if actual is None:
            continue
        kind = expected.kind
        test = options.tests.get(name) or default_test(kind, expected.count, actual.count)
        tests = NUMERIC if isinstance(expected, NumericSketch) else CATEGORICAL
        if test not in tests:
            raise ValidationError(f"column '{name}': test '{test}' does not apply to {kind} columns "
                                  f"(use one of {', '.join(tests)})", field="tests")
        statistic, p_value = tests[test](expected, actual)  # type: ignore[operator]
        threshold = float(options.thresholds.get(name, DEFAULT_THRESHOLDS[test]))
        drifted = p_value < threshold if test in P_VALUE_TESTS else statistic >= threshold
        rows.append({"column": name, "type": kind, "test": test, "statistic": statistic, "p_value": p_value,
                     "threshold": threshold, "drifted": bool(drifted)})
    table = pd.DataFrame(rows, columns=DRIFT_COLUMNS)
    share = float(table["drifted"].mean()) if len(table) else 0.0
    table.attrs.update(share_drifted=share, drifted_columns=int(table["drifted"].sum()),
                       dataset_drift=bool(len(table) and share >= options.drift_share),
                       reference_rows=reference.rows, current_rows=current.rows)
    return table


def profile_reference(data: Any, columns: Sequence[str] | None = None, categorical: Sequence[str] = (),
                      grid: int = GRID, executor: Any = None) -> Profile:
    """Profile reference data: a grid per numeric column, level counts per categorical one.

    Raises:
        ValidationError: the data cannot be read or a named column is missing.
    """
    from conveyor.monitoring.parallel import profile_parallel

    con = duckdb.connect()
    try:
        rel = relation(con, data, "reference")
        types = arrow_types(rel)
        numeric, text = choose_columns(types, columns, categorical, "reference")
        plan = reference_plan(rel, numeric, text, {n: str(t) for n, t in types.items()}, grid)
        if executor is not None:
            return profile_parallel(data, plan, executor)
        return profile_relation(rel, plan)
    finally:
        con.close()


def profile_current(reference: Profile, data: Any, executor: Any = None) -> Profile:
    """Profile current data on the reference's grid, in one pass."""
    from conveyor.monitoring.parallel import profile_parallel

    con = duckdb.connect()
    try:
        rel = relation(con, data, "current")
        plan = current_plan(reference, {n: str(t) for n, t in arrow_types(rel).items()})
        if executor is not None:
            return profile_parallel(data, plan, executor)
        return profile_relation(rel, plan)
    finally:
        con.close()


def drift(reference: Any, current: Any, columns: Sequence[str] | None = None, *,
          categorical: Sequence[str] = (), tests: Mapping[str, str] | None = None,
          thresholds: Mapping[str, float] | None = None, drift_share: float = 0.5,
          executor: Any = None) -> pd.DataFrame:
    """Drift of ``current`` against ``reference``, one row per column: column, type, test,
    statistic, p_value (where the test has one), threshold, drifted.

    Args:
        reference: a DataFrame, Arrow table, Parquet/CSV path or glob, or a ``Profile``
            (a model version's stored reference).
        current: the same kinds of input, except a profile.
        columns: the columns to test; default: every numeric and categorical column.
        categorical: numeric columns to treat as categories (codes, ids).
        tests: column -> ``ks``, ``wasserstein``, ``psi``, ``chisquare`` or ``jensenshannon``.
        thresholds: column -> threshold (a p-value for ks and chisquare, else a distance).
        drift_share: share of drifted columns at which the dataset counts as drifted.
        executor: ``None`` (in-process) or ``"ray"``: split the passes across Ray workers.

    The frame's ``attrs`` hold ``share_drifted``, ``drifted_columns`` and ``dataset_drift``.
    """
    options = DriftOptions(tests=dict(tests or {}), thresholds=dict(thresholds or {}), drift_share=drift_share)
    if isinstance(reference, Profile):
        base = reference
        if columns:
            missing = [c for c in columns if c not in base.columns]
            if missing:
                raise ValidationError(f"the reference profile has no column {', '.join(map(repr, missing))}", field="columns")
            base = base.select(columns)
    else:
        base = profile_reference(reference, columns, categorical, executor=executor)
    return compare(base, profile_current(base, current, executor), options)
