"""validate_model and render_report_html on small fitted scikit-learn models."""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp
from sklearn import metrics as skm
from sklearn.linear_model import LinearRegression, LogisticRegression

from conveyor.errors import ValidationError
from conveyor.governance.validation import (
    DataProfile,
    ValidationReport,
    ValidationThresholds,
    render_report_html,
    validate_model,
)

FEATURES = ["x1", "x2"]


@dataclass
class SklearnPredictor:
    """The predictor duck type around a fitted scikit-learn model."""

    estimator: Any
    features: list[str]
    kind: str

    @property
    def signature(self) -> SimpleNamespace:
        classes = list(getattr(self.estimator, "classes_", []))
        return SimpleNamespace(outputs=SimpleNamespace(kind=self.kind, classes=classes))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.estimator.predict(frame[self.features])

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.estimator.predict_proba(frame[self.features])


def _data(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "x1": rng.normal(size=rows),
        "x2": rng.normal(size=rows),
        "income": rng.lognormal(10, 0.5, rows),
        "region": rng.choice(["north", "south", "east"], rows),
        "opened": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 91, rows), unit="D"),
    })
    signal = frame.x1 + 0.3 * frame.x2 + rng.normal(scale=0.8, size=rows)
    frame["label"] = np.where(signal > 0, "default", "paid")
    frame["amount"] = 3 * frame.x1 - frame.x2 + rng.normal(scale=0.5, size=rows) + 10
    return frame


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return _data()


def _classifier(data: pd.DataFrame, features: list[str] = FEATURES) -> SklearnPredictor:
    return SklearnPredictor(LogisticRegression().fit(data[features], data.label), features, "classification")


@pytest.fixture(scope="module")
def strong(data: pd.DataFrame) -> SklearnPredictor:
    return _classifier(data)


@pytest.fixture(scope="module")
def weak(data: pd.DataFrame) -> SklearnPredictor:
    return _classifier(data, ["x2"])


def _validate(candidate: SklearnPredictor, data: pd.DataFrame, **options: Any) -> ValidationReport:
    target = "amount" if candidate.kind == "regression" else "label"
    return validate_model(candidate, data, model="credit", version=2, target=target, **options)


def _check(report: ValidationReport, name: str) -> Any:
    return next(c for c in report.checks if c.name == name)


def test_classification_metrics_equal_sklearn_with_the_second_class_positive(
    strong: SklearnPredictor, data: pd.DataFrame
) -> None:
    report = _validate(strong, data)
    assert strong.signature.outputs.classes == ["default", "paid"]
    y = (data.label == "paid").to_numpy()
    proba = strong.predict_proba(data)
    auc = skm.roc_auc_score(y, proba[:, 1])
    assert report.task == "classification" and report.rows == 600
    assert report.metrics["roc_auc"] == pytest.approx(auc)
    assert report.metrics["gini"] == pytest.approx(2 * auc - 1)
    assert report.metrics["pr_auc"] == pytest.approx(skm.average_precision_score(y, proba[:, 1]))
    assert report.metrics["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert report.metrics["ks"] == pytest.approx(ks_2samp(proba[y, 1], proba[~y, 1]).statistic)
    assert report.metrics["accuracy"] == pytest.approx(skm.accuracy_score(data.label, strong.predict(data)))
    assert sum(b.count for b in report.calibration or []) == report.rows
    assert report.passed


def test_target_labels_are_matched_to_classes_by_text_when_dtypes_differ(data: pd.DataFrame) -> None:
    numeric = data.assign(label=(data.label == "paid").astype(int))
    model = _classifier(numeric)
    as_text = numeric.assign(label=numeric.label.astype(str))
    assert _validate(model, as_text).metrics == pytest.approx(_validate(model, numeric).metrics)


def test_a_target_value_that_is_no_class_names_the_target(strong: SklearnPredictor, data: pd.DataFrame) -> None:
    with pytest.raises(ValidationError, match="'maybe'") as caught:
        _validate(strong, data.assign(label=data.label.where(data.index > 0, "maybe")))
    assert caught.value.field == "label"


def test_differences_are_candidate_minus_champion(
    strong: SklearnPredictor, weak: SklearnPredictor, data: pd.DataFrame
) -> None:
    report = _validate(strong, data, champion=weak, champion_version=1)
    assert report.champion_metrics == pytest.approx(_validate(weak, data).metrics)
    assert report.differences is not None
    for name, difference in report.differences.items():
        assert difference == pytest.approx(report.metrics[name] - report.champion_metrics[name])
    assert len(report.curves.champion_roc) == 1


def test_a_better_candidate_passes_and_a_worse_one_fails_against_the_champion(
    strong: SklearnPredictor, weak: SklearnPredictor, data: pd.DataFrame
) -> None:
    better = _validate(strong, data, champion=weak, champion_version=1)
    worse = _validate(weak, data, champion=strong, champion_version=1)
    assert _check(better, "champion_comparison").passed and better.passed
    failed = _check(worse, "champion_comparison")
    assert not failed.passed and failed.severity == "fail" and "champion v1" in failed.detail
    assert not worse.passed


def test_without_a_champion_the_comparison_passes_and_says_why(strong: SklearnPredictor, data: pd.DataFrame) -> None:
    report = _validate(strong, data)
    check = _check(report, "champion_comparison")
    assert check.passed and "no champion" in check.detail
    assert report.champion_metrics is None and report.differences is None


def test_a_champion_with_other_classes_is_refused(strong: SklearnPredictor, data: pd.DataFrame) -> None:
    other = _classifier(data.assign(label=np.where(data.x1 > 0, "a", "b")))
    with pytest.raises(ValidationError) as caught:
        _validate(strong, data, champion=other)
    assert caught.value.field == "champion"


def test_segment_rows_sum_to_the_total(strong: SklearnPredictor, data: pd.DataFrame) -> None:
    report = _validate(strong, data, segment="region")
    assert report.segments is not None
    assert [g.value for g in report.segments.groups] == ["east", "north", "south"]
    assert sum(g.rows for g in report.segments.groups) == report.rows
    east = data[data.region == "east"]
    expected = skm.roc_auc_score(east.label == "paid", strong.predict_proba(east)[:, 1])
    assert report.segments.groups[0].metrics["roc_auc"] == pytest.approx(expected)


def test_a_numeric_segment_is_cut_into_labelled_quintiles(strong: SklearnPredictor, data: pd.DataFrame) -> None:
    report = _validate(strong, data, segment="income")
    assert report.segments is not None
    groups = report.segments.groups
    assert [g.value.split()[0] for g in groups] == ["Q1", "Q2", "Q3", "Q4", "Q5"]
    assert [g.rows for g in groups] == [120] * 5
    assert groups[0].value.startswith(f"Q1 [{data.income.min():.4g}, ")
    assert groups[-1].value.endswith(f", {data.income.max():.4g}]")


def test_missing_segment_values_form_their_own_group_on_a_repeated_index(
    strong: SklearnPredictor, data: pd.DataFrame
) -> None:
    doubled = pd.concat([data, data.assign(region=None)])
    report = _validate(strong, doubled, segment="region")
    assert report.segments is not None
    assert [(g.value, g.rows) for g in report.segments.groups][-1] == ("(missing)", 600)
    assert sum(g.rows for g in report.segments.groups) == 1200


def test_periods_group_rows_by_month(strong: SklearnPredictor, data: pd.DataFrame) -> None:
    report = _validate(strong, data, time_column="opened", period="M")
    assert report.periods is not None
    months = data.opened.dt.strftime("%Y-%m").value_counts().sort_index()
    assert [g.value for g in report.periods.groups] == ["2024-01", "2024-02", "2024-03"]
    assert [g.rows for g in report.periods.groups] == months.tolist()
    quarters = _validate(strong, data, time_column="opened", period="Q").periods
    assert quarters is not None and [g.value for g in quarters.groups] == ["2024Q1"]


def test_a_segment_where_the_model_fails_is_flagged_as_a_warning(strong: SklearnPredictor) -> None:
    data = _data(seed=1)
    east = data.region == "east"
    data.loc[east, "label"] = np.random.default_rng(5).permutation(data.loc[east, "label"].to_numpy())
    report = _validate(strong, data, segment="region")
    assert report.segments is not None
    assert [g.value for g in report.segments.groups if g.unstable] == ["east"]
    check = _check(report, "segment_stability")
    assert not check.passed and check.severity == "warn" and "east" in check.detail
    assert report.passed


def test_small_segments_are_not_assessed(strong: SklearnPredictor, data: pd.DataFrame) -> None:
    report = _validate(strong, data, segment="region", thresholds=ValidationThresholds(min_segment_rows=1000))
    check = _check(report, "segment_stability")
    assert check.passed and check.detail.startswith("0 of 3 groups")


@pytest.mark.filterwarnings("ignore:Could not infer format")
@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"segment": "branch"}, "branch"),
        ({"time_column": "closed"}, "time_column"),
        ({"time_column": "region"}, "time_column"),
        ({"time_column": "x1"}, "time_column"),
        ({"time_column": "opened", "period": "fortnight"}, "period"),
    ],
)
def test_bad_grouping_columns_name_their_field(
    strong: SklearnPredictor, data: pd.DataFrame, options: dict[str, str], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        _validate(strong, data, **options)
    assert caught.value.field == field


def test_a_missing_target_column_names_the_target(strong: SklearnPredictor, data: pd.DataFrame) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_model(strong, data, model="credit", version=2, target="outcome")
    assert caught.value.field == "outcome"


def test_too_few_rows_fail_the_report(strong: SklearnPredictor, data: pd.DataFrame) -> None:
    report = _validate(strong, data.head(50))
    check = _check(report, "min_rows")
    assert not check.passed and check.severity == "fail"
    assert not report.passed


def test_missing_target_values_fail_the_report_and_are_left_out(strong: SklearnPredictor, data: pd.DataFrame) -> None:
    gappy = data.assign(label=data.label.where(data.index >= 10))
    report = _validate(strong, gappy)
    assert not _check(report, "target_complete").passed and not report.passed
    assert report.rows == 600
    assert report.metrics == pytest.approx(_validate(strong, data.iloc[10:]).metrics)


def test_the_predictors_own_error_surfaces_unchanged(strong: SklearnPredictor, data: pd.DataFrame) -> None:
    with pytest.raises(KeyError, match="x1"):
        _validate(strong, data.drop(columns=["x1"]))


def test_drift_from_the_reference_profile_fails_the_report(strong: SklearnPredictor, data: pd.DataFrame) -> None:
    reference = DataProfile.from_frame(data)
    same = _validate(strong, data, reference=reference)
    shifted = data.assign(x2=data.x2 + 1.5)
    drifted = _validate(strong, shifted, reference=reference)
    assert _check(same, "population_stability").passed
    assert drifted.psi is not None and drifted.psi["x2"] > 0.25
    assert not _check(drifted, "population_stability").passed and not drifted.passed


def test_regression_metrics_equal_sklearn(data: pd.DataFrame) -> None:
    model = SklearnPredictor(LinearRegression().fit(data[FEATURES], data.amount), FEATURES, "regression")
    report = _validate(model, data)
    predicted = model.predict(data)
    assert report.task == "regression" and report.primary_metric == "rmse"
    assert report.metrics["rmse"] == pytest.approx(skm.root_mean_squared_error(data.amount, predicted))
    assert report.metrics["mae"] == pytest.approx(skm.mean_absolute_error(data.amount, predicted))
    assert report.metrics["mape"] == pytest.approx(skm.mean_absolute_percentage_error(data.amount, predicted))
    assert report.metrics["r2"] == pytest.approx(skm.r2_score(data.amount, predicted))
    assert report.calibration is None and _check(report, "mape_coverage").passed


def test_a_worse_regressor_fails_on_relative_rmse(data: pd.DataFrame) -> None:
    strong = SklearnPredictor(LinearRegression().fit(data[FEATURES], data.amount), FEATURES, "regression")
    weak = SklearnPredictor(LinearRegression().fit(data[["x2"]], data.amount), ["x2"], "regression")
    report = _validate(weak, data, champion=strong, champion_version=1)
    champion_rmse = skm.root_mean_squared_error(data.amount, strong.predict(data))
    assert report.champion_metrics is not None
    assert report.champion_metrics["rmse"] == pytest.approx(champion_rmse)
    increase = (report.metrics["rmse"] - champion_rmse) / champion_rmse
    assert f"relative increase {increase:.4g}" in _check(report, "champion_comparison").detail
    assert not report.passed


def test_zero_targets_are_left_out_of_mape_with_a_warning(data: pd.DataFrame) -> None:
    zeros = data.assign(amount=data.amount.where(data.index >= 5, 0.0))
    model = SklearnPredictor(LinearRegression().fit(zeros[FEATURES], zeros.amount), FEATURES, "regression")
    check = _check(_validate(model, zeros), "mape_coverage")
    assert not check.passed and check.severity == "warn" and "5 rows" in check.detail


def test_a_model_that_is_neither_classifier_nor_regressor_is_refused(data: pd.DataFrame) -> None:
    other = SklearnPredictor(LinearRegression().fit(data[FEATURES], data.amount), FEATURES, "other")
    with pytest.raises(ValidationError) as caught:
        _validate(other, data)
    assert caught.value.field == "candidate"
    with pytest.raises(ValidationError, match="no signature") as caught:
        validate_model(SimpleNamespace(signature=None), data, model="credit", version=2, target="label")
    assert caught.value.field == "candidate"


def _images(page: str) -> int:
    return len(re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+"', page))


def test_the_html_report_renders_from_json_with_every_plot(
    strong: SklearnPredictor, weak: SklearnPredictor, data: pd.DataFrame
) -> None:
    report = _validate(strong, data, champion=weak, champion_version=1, segment="region", time_column="opened",
                       reference=DataProfile.from_frame(data))
    loaded = ValidationReport.model_validate_json(report.to_json())
    assert loaded == report
    page = render_report_html(loaded)
    assert page.startswith("<!DOCTYPE html>")
    for check in report.checks:
        assert f"<td>{check.name}</td>" in page
    assert _images(page) == 5  # ROC, calibration, segments, periods, PSI
    assert "PASSED" in page and "champion v1" in page


def test_the_html_report_of_a_regressor_shows_predicted_against_actual(data: pd.DataFrame) -> None:
    model = SklearnPredictor(LinearRegression().fit(data[FEATURES], data.amount), FEATURES, "regression")
    page = render_report_html(_validate(model, data, segment="region"))
    assert _images(page) == 2  # predicted against actual, segments
    assert "no reference profile" in page.lower()
