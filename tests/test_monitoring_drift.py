"""Drift between two data sets: the right columns flagged, the tests agreeing with SciPy,
and bad input refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

import conveyor
from conveyor.errors import ValidationError
from conveyor.monitoring.drift import profile_current, profile_reference
from conveyor.monitoring.sketch import Profile

DRIFTED = {"n0", "n1", "n2", "n3", "n4", "c0"}


def frame(rows: int, seed: int, drifted: bool = False) -> pd.DataFrame:
    """20 numeric and 5 categorical columns; with ``drifted``, 5 numeric ones shift by
    half a standard deviation (or change scale) and one categorical one reweights."""
    rng = np.random.default_rng(seed)
    data: dict[str, np.ndarray] = {}
    for i in range(20):
        data[f"n{i}"] = rng.normal(10 * i, 1 + i, rows) if i % 2 else rng.gamma(2 + i, 1.5, rows)
    if drifted:
        for i in range(5):
            base = data[f"n{i}"]
            data[f"n{i}"] = base + 0.5 * base.std() if i != 4 else base.mean() + (base - base.mean()) * 1.6
    for j in range(5):
        weights = [0.1, 0.2, 0.3, 0.4] if drifted and j == 0 else [0.4, 0.3, 0.2, 0.1]
        data[f"c{j}"] = rng.choice(["a", "b", "c", "d"], rows, p=weights)
    return pd.DataFrame(data)


@pytest.mark.parametrize("rows", [5_000, 200_000])
def test_injected_drift_is_found_in_exactly_the_drifted_columns(rows: int) -> None:
    result = conveyor.drift(frame(rows, 1), frame(rows, 2, drifted=True))
    assert set(result.loc[result["drifted"], "column"]) == DRIFTED
    assert len(result) == 25
    assert dict(zip(result["type"], result["test"])) == {"numeric": "wasserstein", "categorical": "jensenshannon"}
    assert result.attrs["drifted_columns"] == 6 and result.attrs["share_drifted"] == pytest.approx(6 / 25)
    assert result.attrs["dataset_drift"] is False


def test_small_samples_are_tested_with_ks_and_chi_square_which_find_the_injected_drift() -> None:
    result = conveyor.drift(frame(500, 1), frame(500, 2, drifted=True))
    assert dict(zip(result["type"], result["test"])) == {"numeric": "ks", "categorical": "chisquare"}
    flagged = result.set_index("column")["p_value"]
    assert (flagged[sorted(DRIFTED)] < 1e-4).all()


@pytest.mark.parametrize("rows", [5_000, 100_000])
def test_two_samples_of_one_distribution_show_no_drift(rows: int) -> None:
    result = conveyor.drift(frame(rows, 3), frame(rows, 4))
    assert not result["drifted"].any(), result[result["drifted"]]
    assert result.attrs["share_drifted"] == 0.0


def test_small_sample_p_values_flag_about_five_percent_of_undrifted_columns() -> None:
    flagged = [conveyor.drift(frame(300, seed), frame(300, seed + 1000))["drifted"].mean() for seed in range(30)]
    assert 0.02 <= float(np.mean(flagged)) <= 0.09


def test_statistics_agree_with_scipy_on_the_raw_values() -> None:
    reference, current = frame(20_000, 5), frame(20_000, 6, drifted=True)
    result = conveyor.drift(reference, current, tests={"n0": "ks", "c0": "chisquare"}).set_index("column")
    ks = stats.ks_2samp(reference["n0"], current["n0"])
    assert result.loc["n0", "statistic"] == pytest.approx(ks.statistic, abs=0.003)
    exact = stats.wasserstein_distance(reference["n1"], current["n1"]) / reference["n1"].std(ddof=0)
    assert result.loc["n1", "statistic"] == pytest.approx(exact, rel=0.02)
    shares = [reference["c1"].value_counts(normalize=True).sort_index(), current["c1"].value_counts(normalize=True).sort_index()]
    assert result.loc["c1", "statistic"] == pytest.approx(distance.jensenshannon(*shares), rel=1e-6)
    table = pd.crosstab(np.r_[np.zeros(20_000), np.ones(20_000)], np.r_[reference["c0"], current["c0"]])
    assert result.loc["c0", "p_value"] == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue, rel=1e-6)


def test_tests_and_thresholds_can_be_set_per_column_and_the_dataset_rule_applies() -> None:
    result = conveyor.drift(frame(5_000, 1), frame(5_000, 2, drifted=True), columns=["n0", "n5", "c0"],
                            tests={"n5": "psi"}, thresholds={"n0": 10.0}, drift_share=0.3)
    rows = result.set_index("column")
    assert rows.loc["n5", "test"] == "psi" and not rows.loc["n5", "drifted"]
    assert rows.loc["n0", "threshold"] == 10.0 and not rows.loc["n0", "drifted"]
    assert rows.loc["c0", "drifted"]
    assert result.attrs["dataset_drift"] is True


def test_parquet_files_and_a_stored_profile_give_the_same_answer_as_frames(tmp_path: Path) -> None:
    reference, current = frame(30_000, 1), frame(30_000, 2, drifted=True)
    for part in range(3):
        reference.iloc[part * 10_000:(part + 1) * 10_000].to_parquet(tmp_path / f"ref-{part}.parquet")
    current.to_csv(tmp_path / "current.csv", index=False)
    from_files = conveyor.drift(str(tmp_path / "ref-*.parquet"), tmp_path / "current.csv")
    profile = Profile.from_bytes(profile_reference(reference).to_bytes())
    from_profile = conveyor.drift(profile, current)
    assert set(from_files.loc[from_files["drifted"], "column"]) == DRIFTED
    assert from_profile["statistic"].tolist() == pytest.approx(from_files["statistic"].tolist(), rel=0.05)


def test_partial_profiles_merge_into_the_profile_of_the_whole() -> None:
    data = frame(9_000, 7)
    reference = profile_reference(data)
    whole = profile_current(reference, data)
    parts = [profile_current(reference, data.iloc[i::3]) for i in range(3)]
    merged = parts[0]
    for part in parts[1:]:
        merged.merge(part)
    assert merged.rows == whole.rows == 9_000
    assert merged.columns["n3"].counts.tolist() == whole.columns["n3"].counts.tolist()
    assert merged.columns["n3"].std == pytest.approx(whole.columns["n3"].std)
    assert merged.columns["c2"].levels == whole.columns["c2"].levels


def test_nulls_infinities_and_values_outside_the_reference_range_are_counted() -> None:
    reference = profile_reference(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}))
    current = profile_current(reference, pd.DataFrame({"x": [np.nan, np.inf, 0.5, 2.0, 9.0]}))
    sketch = current.columns["x"]
    assert (sketch.nulls, sketch.count, sketch.under, int(sketch.counts[-1])) == (2, 3, 1, 1)
    assert (sketch.min, sketch.max) == (0.5, 9.0)


def test_the_executor_splits_the_pass_and_gives_the_same_answer(tmp_path: Path) -> None:
    reference, current = frame(20_000, 1), frame(20_000, 2, drifted=True)
    current.to_parquet(tmp_path / "current.parquet", row_group_size=2_000)
    alone = conveyor.drift(reference, tmp_path / "current.parquet")
    split = conveyor.drift(reference, tmp_path / "current.parquet", executor="local")
    assert split["statistic"].tolist() == pytest.approx(alone["statistic"].tolist(), rel=1e-9)


@pytest.mark.parametrize(("call", "field", "message"), [
    (lambda: conveyor.drift(frame(10, 1), frame(10, 2), columns=["nope"]), "columns", "no column 'nope'"),
    (lambda: conveyor.drift(frame(10, 1), frame(10, 2), tests={"n0": "t-test"}), "tests", "unknown test 't-test'"),
    (lambda: conveyor.drift(frame(10, 1), frame(10, 2), tests={"c0": "ks"}), "tests", "does not apply to categorical"),
    (lambda: conveyor.drift(frame(10, 1), "/no/such.parquet"), "current", "no such file"),
    (lambda: conveyor.drift([1, 2], frame(10, 2)), "reference", "expected a DataFrame"),
    (lambda: conveyor.drift(frame(10, 1), frame(10, 2), drift_share=0), "drift_share", "drift_share"),
])
def test_bad_input_is_refused_naming_the_field(call, field: str, message: str) -> None:  # noqa: ANN001
    with pytest.raises(ValidationError) as raised:
        call()
    assert raised.value.field == field and message in raised.value.message
