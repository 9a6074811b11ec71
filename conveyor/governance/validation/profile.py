"""A small, JSON-serialisable picture of the training data, and drift against it.

A ``DataProfile`` keeps, per column, the shares of rows falling into a few bins:
quantile bins for numbers, the most frequent levels for everything else, and the
share of missing values. It is a few kilobytes however large the data, so the
registry can store it next to a model version and compare any later frame with
the population stability index (PSI):

    PSI = sum over bins of (actual - expected) * ln(actual / expected)

Rules of thumb: below 0.1 stable, 0.1-0.25 moderate shift, above 0.25 a shift
worth investigating. Empty bins would make the logarithm infinite, so shares are
floored at ``EPSILON`` (the usual smoothing) before the sum.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from conveyor.errors import ValidationError

EPSILON = 1e-4
TOP_LEVELS = 50
OTHER = "__other__"


def is_numeric(series: pd.Series) -> bool:
    """Whether ``series`` holds numbers; booleans count as categories."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _numeric_shares(edges: list[float], series: pd.Series) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    present = values[~np.isnan(values)]
    cuts = np.asarray(edges[1:-1])
    counts = np.bincount(np.searchsorted(cuts, present, side="left"), minlength=len(cuts) + 1)
    return np.append(counts, len(values) - len(present)) / len(values)


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    expected = np.clip(expected, EPSILON, None)
    actual = np.clip(actual, EPSILON, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


class NumericProfile(BaseModel):
    """Quantile bins of a numeric column.

    ``edges`` are the quantiles of the reference values (minimum to maximum, ties
    collapsed); the outer bins are open-ended so later values outside the reference
    range still land in a bin. ``proportions`` are shares of all rows per bin and,
    with ``missing``, sum to one.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["numeric"] = "numeric"
    edges: list[float]
    proportions: list[float]
    missing: float

    @classmethod
    def from_series(cls, series: pd.Series, bins: int) -> NumericProfile:
        """Profile ``series`` with up to ``bins`` quantile bins."""
        values = series.dropna().to_numpy(dtype=float)
        edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1))).tolist() if len(values) else []
        shares = _numeric_shares(edges, series)
        return cls(edges=edges, proportions=shares[:-1].tolist(), missing=float(shares[-1]))

    def shares(self, series: pd.Series) -> np.ndarray:
        """Shares of ``series`` per bin, then the missing share; non-numbers count as missing."""
        return _numeric_shares(self.edges, series)

    def expected(self) -> np.ndarray:
        """The reference shares, in the order ``shares`` returns them."""
        return np.array([*self.proportions, self.missing])


class CategoricalProfile(BaseModel):
    """Shares of the most frequent levels of a column, as text.

    Levels beyond the ``TOP_LEVELS`` most frequent share the ``"__other__"`` bin, and
    so do levels first seen after profiling: a new level shows up as growth of
    ``"__other__"``.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["categorical"] = "categorical"
    levels: dict[str, float]
    missing: float

    @classmethod
    def from_series(cls, series: pd.Series) -> CategoricalProfile:
        """Profile ``series`` by its most frequent levels."""
        shares = series.dropna().astype(str).value_counts() / len(series)
        levels = {str(level): float(share) for level, share in shares.head(TOP_LEVELS).items()}
        levels[OTHER] = float(shares.iloc[TOP_LEVELS:].sum())
        return cls(levels=levels, missing=float(series.isna().mean()))

    def shares(self, series: pd.Series) -> np.ndarray:
        """Shares of ``series`` per known level (unknown ones under ``"__other__"``), then missing."""
        text = series.dropna().astype(str)
        text = text.where(text.isin(self.levels.keys()), OTHER)
        counts = text.value_counts().reindex(list(self.levels), fill_value=0).to_numpy()
        return np.append(counts, series.isna().sum()) / len(series)

    def expected(self) -> np.ndarray:
        """The reference shares, in the order ``shares`` returns them."""
        return np.array([*self.levels.values(), self.missing])


ColumnProfile = Annotated[NumericProfile | CategoricalProfile, Field(discriminator="kind")]


class DataProfile(BaseModel):
    """The reference distribution of a frame, small enough to store with a model version."""

    model_config = ConfigDict(frozen=True)

    rows: int
    columns: dict[str, ColumnProfile]

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, bins: int = 10) -> DataProfile:
        """Profile every column of ``frame``: numbers in ``bins`` quantile bins, others by level.

        Datetime columns are left out: time always moves on, so their PSI would
        flag every later frame.

        Raises:
            ValidationError: ``frame`` has no rows, or ``bins`` is below 2.
        """
        if bins < 2:
            raise ValidationError(f"bins must be at least 2, got {bins}", field="bins")
        if frame.empty:
            raise ValidationError("cannot profile a frame with no rows", field="frame")
        columns: dict[str, NumericProfile | CategoricalProfile] = {}
        for name, series in frame.items():
            if pd.api.types.is_datetime64_any_dtype(series):
                continue
            columns[str(name)] = (
                NumericProfile.from_series(series, bins)
                if is_numeric(series)
                else CategoricalProfile.from_series(series)
            )
        return cls(rows=len(frame), columns=columns)

    def psi(self, frame: pd.DataFrame) -> dict[str, float]:
        """Population stability index of each profiled column that ``frame`` also has.

        Returns an empty dict for a frame without rows: there is nothing to compare.
        """
        if frame.empty:
            return {}
        return {
            name: _psi(profile.expected(), profile.shares(frame[name]))
            for name, profile in self.columns.items()
            if name in frame.columns
        }
