"""Task-aware pipeline metrics: hand-computed values, sklearn agreement, and errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.ensemble import IsolationForest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from conveyor.errors import ValidationError
from conveyor.pipelines import evaluation as ev


def _no_nan(found: dict[str, float | None]) -> bool:
    return all(value is None or (isinstance(value, float) and math.isfinite(value)) for value in found.values())


def test_smape_counts_rows_where_both_are_zero_as_perfect() -> None:
    y = np.array([1.0, 2.0, 0.0, 4.0])
    predicted = np.array([1.0, 4.0, 0.0, 2.0])
    found = ev.metrics("forecasting", y, predicted)
    assert found["smape"] == pytest.approx((0 + 4 / 6 + 0 + 4 / 6) / 4)
    assert found["mase"] is None


def test_mase_divides_mae_by_the_training_naive_error() -> None:
    scale = ev.mase_scale(np.array([1.0, 3.0, 6.0, 10.0]))
    assert scale == pytest.approx(3.0)
    found = ev.metrics("forecasting", np.array([12.0, 15.0]), np.array([9.0, 15.0]), mase_scale=scale)
    assert found["mae"] == pytest.approx(1.5)
    assert found["mase"] == pytest.approx(0.5)
    assert ev.metrics("forecasting", np.array([1.0]), np.array([2.0]), mase_scale=0.0)["mase"] is None


def test_mase_scale_with_season_two() -> None:
    assert ev.mase_scale(np.array([1.0, 3.0, 6.0, 10.0]), season=2) == pytest.approx((5 + 7) / 2)
    assert ev.mase_scale(np.array([1.0, 2.0]), season=2) is None


def test_mase_scale_never_pairs_rows_of_different_groups() -> None:
    y = np.array([1.0, 10.0, 2.0, 13.0, 4.0])
    groups = np.array(["a", "b", "a", "b", "a"])
    assert ev.mase_scale(y, groups=groups) == pytest.approx((1 + 2 + 3) / 3)


def test_mase_scale_with_groups_and_season_two() -> None:
    y = np.array([1.0, 2.0, 4.0, 7.0, 10.0, 20.0, 40.0, 5.0])
    groups = np.array(["a", "a", "a", "a", "b", "b", "b", "c"])
    assert ev.mase_scale(y, season=2, groups=groups) == pytest.approx((3 + 5 + 30) / 3)


def test_ndcg_at_k_equals_sklearn_on_one_group_and_skips_single_row_groups() -> None:
    y = np.array([3.0, 2.0, 0.0, 1.0, 0.0])
    scores = np.array([0.1, 0.9, 0.5, 0.3, 0.7])
    groups = np.array([1, 1, 1, 1, 2])
    found = ev.metrics("ranking", y, scores, groups=groups, k=3)
    expected = skm.ndcg_score([y[:4]], [scores[:4]], k=3)
    assert expected < 1
    assert found["ndcg_at_k"] == pytest.approx(expected)
    assert found["rmse"] == pytest.approx(np.sqrt(np.mean((y - scores) ** 2)))


def test_map_at_k_by_hand_on_two_groups() -> None:
    # q1 ranked by score: relevant, -, -, relevant -> AP@3 = 1 / min(3, 2)
    # q2 ranked by score: -, relevant, relevant -> AP@3 = (1/2 + 2/3) / 2
    y = np.array([1.0, 0.0, 2.0, 1.0, 0.0, 5.0, 0.0])
    scores = np.array([0.9, 0.3, 0.2, 0.1, 0.8, 0.1, 0.7])
    groups = np.array(["q1", "q2", "q2", "q1", "q1", "q2", "q1"])
    found = ev.metrics("ranking", y, scores, groups=groups, k=3)
    assert found["map_at_k"] == pytest.approx((0.5 + 7 / 12) / 2)
    # only y >= 3 is relevant: q1 has none and is skipped, q2's one hit is at rank 3
    strict = ev.metrics("ranking", y, scores, groups=groups, k=3, relevant=3)
    assert strict["map_at_k"] == pytest.approx(1 / 3)
    # k=1: q1's top row is relevant, AP@1 = 1 / min(1, 2); q2's is not
    assert ev.metrics("ranking", y, scores, groups=groups, k=1)["map_at_k"] == pytest.approx(0.5)


def test_precision_and_recall_at_k_by_hand() -> None:
    y = np.array([0, 1, 0, 1, 0, 0, 1, 0])
    scores = np.array([0.1, 0.9, 0.8, 0.7, 0.2, 0.3, 0.05, 0.4])
    top3 = ev.metrics("anomaly", y, scores, k=3)
    assert top3["precision_at_k"] == pytest.approx(2 / 3)
    assert top3["recall_at_k"] == pytest.approx(2 / 3)
    assert top3["average_precision"] == pytest.approx(skm.average_precision_score(y, scores))
    assert top3["roc_auc"] == pytest.approx(skm.roc_auc_score(y, scores))
    top1 = ev.metrics("anomaly", y, scores, k=1)
    assert (top1["precision_at_k"], top1["recall_at_k"]) == (1.0, pytest.approx(1 / 3))
    everything = ev.metrics("anomaly", y, scores, k=20)
    assert (everything["precision_at_k"], everything["recall_at_k"]) == (pytest.approx(3 / 8), 1.0)


def test_one_class_anomaly_labels_give_none_not_nan() -> None:
    found = ev.metrics("anomaly", np.zeros(6, dtype=int), np.linspace(0, 1, 6), k=2)
    assert found["roc_auc"] is None and found["recall_at_k"] is None and found["average_precision"] is None
    assert found["precision_at_k"] == 0.0
    assert _no_nan(found)


def test_every_task_returns_its_metric_names_without_nan() -> None:
    rng = np.random.default_rng(0)
    y_class = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    proba = rng.dirichlet(np.ones(3), size=8)
    binary_proba = np.column_stack([1 - proba[:, 0], proba[:, 0]])
    cases = {
        "binary": (y_class % 2, binary_proba, {}),
        "multiclass": (y_class, proba, {}),
        "regression": (np.arange(8.0), np.arange(8.0) + 0.5, {}),
        "forecasting": (np.arange(8.0), np.arange(8.0) + 0.5, {"mase_scale": 2.0}),
        "ranking": (y_class.astype(float), rng.uniform(size=8), {"groups": np.repeat([1, 2], 4)}),
        "anomaly": (y_class == 2, rng.uniform(size=8), {"k": 3}),
    }
    for task, (y, scores, options) in cases.items():
        found = ev.metrics(task, y, scores, **options)
        assert tuple(found) == ev.metric_names(task), task
        assert ev.primary_metric(task) in found
        assert _no_nan(found), task
        assert all(value is not None for value in found.values()), task


def test_binary_f1_uses_the_half_threshold() -> None:
    y = np.array([1, 1, 0, 0])
    score = np.array([0.6, 0.4, 0.7, 0.1])
    found = ev.metrics("binary", y, np.column_stack([1 - score, score]))
    assert found["f1"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("task", "direction"),
    [
        ("binary", "maximize"),
        ("multiclass", "maximize"),
        ("regression", "minimize"),
        ("forecasting", "minimize"),
        ("ranking", "maximize"),
        ("anomaly", "maximize"),
    ],
)
def test_direction_of_each_primary_metric(task: str, direction: str) -> None:
    assert ev.metric_direction(ev.primary_metric(task)) == direction


def test_primary_metrics_and_unknown_names() -> None:
    assert [ev.primary_metric(task) for task in ev.TASKS] == [
        "roc_auc", "f1_macro", "rmse", "smape", "ndcg_at_k", "precision_at_k",
    ]
    with pytest.raises(ValidationError, match="unknown metric 'auc'") as error:
        ev.metric_direction("auc")
    assert error.value.field == "metric"
    with pytest.raises(ValidationError, match="unknown task"):
        ev.primary_metric("clustering")


def test_better_in_both_directions_with_margins() -> None:
    assert ev.better("roc_auc", 0.75, 0.5, margin=0.25)
    assert not ev.better("roc_auc", 0.625, 0.5, margin=0.25)
    assert not ev.better("roc_auc", 0.5, 0.75)
    assert ev.better("rmse", 0.5, 0.75, margin=0.25)
    assert not ev.better("rmse", 0.625, 0.75, margin=0.25)
    assert not ev.better("rmse", 0.75, 0.5)
    assert ev.better("rmse", 0.75, 0.75)


def test_isolation_forest_in_a_pipeline_scores_the_outlier_highest() -> None:
    rng = np.random.default_rng(1)
    train = pd.DataFrame(rng.normal(size=(300, 2)), columns=["a", "b"])
    model = make_pipeline(StandardScaler(), IsolationForest(random_state=0)).fit(train)
    frame = pd.DataFrame({"a": [0.0, 8.0], "b": [0.0, -8.0]})
    scores = ev.predict_scores("anomaly", model, frame)
    assert scores.shape == (2,)
    assert scores[1] > scores[0]


def test_anomaly_scores_fall_back_to_negated_decision_function() -> None:
    class Detector:
        def decision_function(self, frame: pd.DataFrame) -> np.ndarray:
            return frame["a"].to_numpy()

    scores = ev.predict_scores("anomaly", Detector(), pd.DataFrame({"a": [1.0, -2.0]}))
    assert scores.tolist() == [-1.0, 2.0]


def test_binary_logistic_regression_gives_two_probability_columns() -> None:
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]})
    y = pd.Series(["no", "no", "no", "yes", "yes", "yes"])
    model = LogisticRegression().fit(frame, y)
    proba = ev.predict_scores("binary", model, frame)
    assert proba.shape == (6, 2)
    assert proba.sum(axis=1) == pytest.approx(np.ones(6))
    assert ev.predict_scores("anomaly", model, frame) == pytest.approx(proba[:, 1])
    codes = ev.encode_labels("binary", y, classes=model.classes_)
    assert codes.tolist() == [0, 0, 0, 1, 1, 1]
    assert ev.metrics("binary", codes, proba)["roc_auc"] == 1.0


def test_encode_labels() -> None:
    assert ev.encode_labels("multiclass", pd.Series(["b", "a", "c", "a"])).tolist() == [1, 0, 2, 0]
    assert ev.encode_labels("anomaly", pd.Series([True, False, True])).tolist() == [1, 0, 1]
    assert ev.encode_labels("anomaly", pd.Series([0, 1, 0])).tolist() == [0, 1, 0]
    assert ev.encode_labels("regression", pd.Series([1, 2])).dtype == float
    with pytest.raises(ValidationError, match="not among the model's classes: maybe"):
        ev.encode_labels("binary", pd.Series(["yes", "maybe"]), classes=["no", "yes"])


def test_ranking_without_groups_names_the_group_column() -> None:
    with pytest.raises(ValidationError, match="evaluate.group_column") as error:
        ev.metrics("ranking", np.array([1.0, 0.0]), np.array([0.5, 0.2]))
    assert error.value.field == "evaluate.group_column"


def test_mismatched_lengths_and_shapes_are_rejected() -> None:
    with pytest.raises(ValidationError, match="scores have 2 rows, y has 3"):
        ev.metrics("regression", np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0]))
    with pytest.raises(ValidationError, match=r"expected \(rows, classes\)"):
        ev.metrics("binary", np.array([0, 1]), np.array([0.2, 0.7]))
    with pytest.raises(ValidationError, match="groups has 1 rows, y has 2"):
        ev.metrics("ranking", np.array([1.0, 0.0]), np.array([0.5, 0.2]), groups=np.array([1]))
    with pytest.raises(ValidationError, match="NaN"):
        ev.metrics("regression", np.array([1.0, 2.0]), np.array([1.0, np.nan]))
