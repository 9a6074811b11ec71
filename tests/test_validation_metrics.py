"""Validation metrics agree with scikit-learn and SciPy, and handle undefined cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ks_2samp
from sklearn import metrics as skm

from conveyor.governance.validation import metrics
from conveyor.governance.validation.metrics import MAX_CURVE_POINTS


@pytest.fixture
def binary() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 400)
    score = np.clip(0.3 * y + rng.uniform(0, 0.7, 400), 0, 1)
    return y, np.column_stack([1 - score, score])


def test_binary_metrics_equal_sklearn_and_scipy(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, proba = binary
    found = metrics.binary_metrics(y, proba)
    auc = skm.roc_auc_score(y, proba[:, 1])
    assert found["roc_auc"] == pytest.approx(auc)
    assert found["pr_auc"] == pytest.approx(skm.average_precision_score(y, proba[:, 1]))
    assert found["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert found["brier"] == pytest.approx(skm.brier_score_loss(y, proba[:, 1]))
    assert found["accuracy"] == pytest.approx(skm.accuracy_score(y, proba[:, 1] > 0.5))
    assert found["ks"] == pytest.approx(ks_2samp(proba[y == 1, 1], proba[y == 0, 1]).statistic)
    assert found["gini"] == pytest.approx(2 * auc - 1)


def test_metrics_needing_both_classes_are_none_with_one_class() -> None:
    y = np.zeros(20, dtype=int)
    proba = np.column_stack([np.full(20, 0.8), np.full(20, 0.2)])
    found = metrics.binary_metrics(y, proba)
    assert found["roc_auc"] is None and found["ks"] is None and found["gini"] is None
    assert found["accuracy"] == 1.0
    assert found["brier"] == pytest.approx(0.04)


def test_multiclass_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 300)
    raw = rng.uniform(size=(300, 3)) + np.eye(3)[y]
    proba = raw / raw.sum(axis=1, keepdims=True)
    found = metrics.multiclass_metrics(y, proba)
    assert found["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"))
    assert found["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert found["accuracy"] == pytest.approx(skm.accuracy_score(y, proba.argmax(axis=1)))
    assert found["f1_macro"] == pytest.approx(skm.f1_score(y, proba.argmax(axis=1), average="macro"))
    assert metrics.multiclass_metrics(y[y < 2], proba[y < 2])["roc_auc"] is None


def test_regression_metrics_equal_sklearn_and_mape_skips_zero_targets() -> None:
    y = np.array([0.0, 1.0, 2.0, 4.0, 8.0])
    predicted = np.array([0.5, 1.5, 1.0, 4.0, 10.0])
    found = metrics.regression_metrics(y, predicted)
    assert found["rmse"] == pytest.approx(skm.root_mean_squared_error(y, predicted))
    assert found["mae"] == pytest.approx(skm.mean_absolute_error(y, predicted))
    assert found["r2"] == pytest.approx(skm.r2_score(y, predicted))
    assert found["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y[1:], predicted[1:]))
    assert metrics.regression_metrics(np.zeros(3), np.ones(3))["mape"] is None


def test_calibration_bins_count_every_row_once(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, proba = binary
    bins = metrics.calibration_bins(y, proba[:, 1])
    assert len(bins) == 10
    assert sum(b.count for b in bins) == len(y)
    last = bins[-1]
    inside = proba[:, 1] >= 0.9
    assert last.count == inside.sum()
    assert last.observed_rate == pytest.approx(y[inside].mean())
    assert last.mean_predicted == pytest.approx(proba[inside, 1].mean())


def test_roc_curves_are_downsampled_but_keep_their_ends() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 5000)
    score = rng.uniform(size=5000)
    (curve,) = metrics.roc_curves(y, np.column_stack([1 - score, score]), ["no", "yes"])
    assert curve.label == "yes"
    assert len(curve.fpr) <= MAX_CURVE_POINTS
    assert (curve.fpr[0], curve.tpr[0], curve.fpr[-1], curve.tpr[-1]) == (0.0, 0.0, 1.0, 1.0)


def test_auc_standard_error_follows_hanley_mcneil() -> None:
    positive = np.array([True] * 50 + [False] * 50)
    score = np.r_[np.linspace(0.3, 1, 50), np.linspace(0, 0.7, 50)]
    auc = skm.roc_auc_score(positive, score)
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    expected = np.sqrt((auc * (1 - auc) + 49 * (q1 - auc**2) + 49 * (q2 - auc**2)) / 2500)
    assert metrics.auc_standard_error(positive, score) == pytest.approx(expected)
    assert metrics.auc_standard_error(np.ones(5, dtype=bool), np.ones(5)) is None
