"""Drift tests on two sketches of a column.

Each test returns ``(statistic, p_value)``; ``p_value`` is ``None`` for distances.
Numeric tests read the counts on the reference's grid: KS is evaluated at every
grid edge, Wasserstein integrates the piecewise-linear CDFs between edges and the
exact tails beyond them, PSI uses the reference's deciles. Categorical tests read the
level counts.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats
from scipy.spatial import distance

from conveyor.monitoring.sketch import CategoricalSketch, NumericSketch

EPSILON = 1e-4
PSI_BINS = 10
MIN_STD = 1e-3
MIN_EXPECTED = 5

Result = tuple[float, float | None]


def kolmogorov_smirnov(reference: NumericSketch, current: NumericSketch) -> Result:
    """Two-sample KS: the largest gap between the CDFs, with its asymptotic p-value."""
    if not reference.count or not current.count:
        return 0.0, 1.0
    gap = float(np.abs(reference.cdf() - current.cdf()).max())
    effective = reference.count * current.count / (reference.count + current.count)
    return gap, float(stats.kstwo.sf(gap, max(1, round(effective))))


def wasserstein(reference: NumericSketch, current: NumericSketch) -> Result:
    """Earth mover's distance divided by the reference's standard deviation, so one
    threshold (0.1 by default) fits every column's scale."""
    if not reference.count or not current.count:
        return 0.0, None
    edges = reference.edges
    gap = reference.cdf() - current.cdf()
    widths = np.diff(edges)
    left, right = gap[:-1], gap[1:]
    same_sign = left * right >= 0
    summed = np.abs(left) + np.abs(right)
    crossing = np.divide(left**2 + right**2, 2 * summed, out=np.zeros_like(summed), where=summed > 0)
    inside = float(np.sum(widths * np.where(same_sign, summed / 2, crossing)))
    below = abs(_tail_below(reference) - _tail_below(current))
    above = abs(_tail_above(reference) - _tail_above(current))
    return (inside + below + above) / max(reference.std, MIN_STD), None


def _tail_below(sketch: NumericSketch) -> float:
    """Integral of the CDF up to the first edge: how far the values in slot 0 lie below it."""
    return (sketch.counts[0] * sketch.edges[0] - sketch.below_sum) / sketch.count


def _tail_above(sketch: NumericSketch) -> float:
    return (sketch.above_sum - sketch.counts[-1] * sketch.edges[-1]) / sketch.count


def numeric_psi(reference: NumericSketch, current: NumericSketch) -> Result:
    """Population stability index over the reference's deciles."""
    if not reference.count or not current.count:
        return 0.0, None
    cumulative = np.cumsum(reference.counts)
    cuts = np.searchsorted(cumulative, np.linspace(0, reference.count, PSI_BINS + 1)[1:-1], side="left")
    bounds = np.unique(np.concatenate([[0], cuts + 1, [len(reference.counts)]]))
    expected = np.add.reduceat(reference.counts, bounds[:-1]) / reference.count
    actual = np.add.reduceat(current.counts, bounds[:-1]) / current.count
    return _psi(expected, actual), None


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    expected = np.clip(expected, EPSILON, None)
    actual = np.clip(actual, EPSILON, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _aligned(reference: CategoricalSketch, current: CategoricalSketch) -> tuple[np.ndarray, np.ndarray]:
    levels = list(dict.fromkeys([*reference.levels, *current.levels]))
    return (np.array([reference.levels.get(level, 0) for level in levels], dtype=float),
            np.array([current.levels.get(level, 0) for level in levels], dtype=float))


def chi_square(reference: CategoricalSketch, current: CategoricalSketch) -> Result:
    """Chi-square test of homogeneity on the two samples' level counts; levels expected
    fewer than five times in the current sample are pooled, as the test's approximation
    needs (without it, a column of many rare levels drifts on noise)."""
    expected, actual = _aligned(reference, current)
    sparse = expected / max(expected.sum(), 1) * actual.sum() < MIN_EXPECTED
    if sparse.any() and (~sparse).any():
        expected = np.append(expected[~sparse], expected[sparse].sum())
        actual = np.append(actual[~sparse], actual[sparse].sum())
    table = np.vstack([expected, actual])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or not expected.sum() or not actual.sum():
        return 0.0, 1.0
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def jensen_shannon(reference: CategoricalSketch, current: CategoricalSketch) -> Result:
    """Jensen-Shannon distance (natural log) between the level shares."""
    expected, actual = _aligned(reference, current)
    if not expected.sum() or not actual.sum():
        return 0.0, None
    return float(distance.jensenshannon(expected / expected.sum(), actual / actual.sum())), None


def categorical_psi(reference: CategoricalSketch, current: CategoricalSketch) -> Result:
    """Population stability index over the levels."""
    expected, actual = _aligned(reference, current)
    if not expected.sum() or not actual.sum():
        return 0.0, None
    return _psi(expected / expected.sum(), actual / actual.sum()), None


NUMERIC: dict[str, Callable[[NumericSketch, NumericSketch], Result]] = {
    "ks": kolmogorov_smirnov, "wasserstein": wasserstein, "psi": numeric_psi,
}
CATEGORICAL: dict[str, Callable[[CategoricalSketch, CategoricalSketch], Result]] = {
    "chisquare": chi_square, "jensenshannon": jensen_shannon, "psi": categorical_psi,
}
P_VALUE_TESTS = frozenset({"ks", "chisquare"})
DEFAULT_THRESHOLDS = {"ks": 0.05, "chisquare": 0.05, "wasserstein": 0.1, "jensenshannon": 0.1, "psi": 0.1}
