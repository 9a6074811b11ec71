"""Data profiles and the population stability index."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conveyor.errors import ValidationError
from conveyor.governance.validation import DataProfile
from conveyor.governance.validation.profile import (
    OTHER,
    CategoricalProfile,
    NumericProfile,
)


def _frame(seed: int, shift: float = 0.0, rows: int = 5000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "income": rng.normal(50 + shift, 10, rows),
        "region": rng.choice(["north", "south", "east"], rows, p=[0.5, 0.3, 0.2]),
        "opened": pd.date_range("2024-01-01", periods=rows, freq="h"),
    })


def test_the_same_distribution_has_psi_near_zero() -> None:
    profile = DataProfile.from_frame(_frame(1))
    psi = profile.psi(_frame(2))
    assert set(psi) == {"income", "region"}
    assert all(value < 0.01 for value in psi.values())


def test_a_one_standard_deviation_shift_gives_a_large_psi() -> None:
    profile = DataProfile.from_frame(_frame(1))
    psi = profile.psi(_frame(2, shift=10.0))
    assert psi["income"] > 0.25
    assert psi["region"] < 0.01


def test_shares_of_a_numeric_profile_sum_to_one_with_missing_values() -> None:
    values = pd.Series([1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    profile = NumericProfile.from_series(values, bins=4)
    assert profile.missing == pytest.approx(0.1)
    assert sum(profile.proportions) + profile.missing == pytest.approx(1.0)
    assert profile.edges[0] == 1.0 and profile.edges[-1] == 10.0


def test_a_new_categorical_level_counts_as_other_and_raises_psi() -> None:
    profile = DataProfile.from_frame(_frame(1))
    drifted = _frame(2)
    drifted.loc[: len(drifted) // 2, "region"] = "west"
    column = profile.columns["region"]
    assert isinstance(column, CategoricalProfile)
    assert column.levels[OTHER] == 0.0
    assert profile.psi(drifted)["region"] > 0.25


def test_values_outside_the_reference_range_land_in_the_outer_bins() -> None:
    profile = NumericProfile.from_series(pd.Series(np.arange(100.0)), bins=10)
    shares = profile.shares(pd.Series([-1000.0, 1000.0]))
    assert shares[0] == 0.5 and shares[-2] == 0.5 and shares[-1] == 0.0


def test_a_profile_round_trips_through_json_with_the_same_psi() -> None:
    profile = DataProfile.from_frame(_frame(1))
    loaded = DataProfile.model_validate_json(profile.model_dump_json())
    drifted = _frame(2, shift=3.0)
    assert loaded == profile
    assert loaded.psi(drifted) == profile.psi(drifted)
    assert len(profile.model_dump_json()) < 10_000


def test_a_profile_keeps_only_the_top_levels() -> None:
    frame = pd.DataFrame({"code": [f"c{i % 80}" for i in range(800)]})
    column = DataProfile.from_frame(frame).columns["code"]
    assert isinstance(column, CategoricalProfile)
    assert len(column.levels) == 51
    assert column.levels[OTHER] == pytest.approx(30 / 80)


def test_profiling_an_empty_frame_names_the_frame() -> None:
    with pytest.raises(ValidationError) as caught:
        DataProfile.from_frame(pd.DataFrame({"x": []}))
    assert caught.value.field == "frame"
