"""Every flavor writes a model folder that loads back into the same predictions."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import catboost
import lightgbm
import numpy as np
import pandas as pd
import pytest
import xgboost
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from conveyor.registry.packaging import (
    MANIFEST_FILE,
    Predictor,
    infer_signature,
    load_folder,
    read_manifest,
    save_model,
)
from conveyor.registry.packaging.flavors import FLAVORS, Flavor

ROWS = 240


def _features(seed: int, classes: int = 2) -> tuple[pd.DataFrame, np.ndarray]:
    """Four numeric columns, a string column and a categorical column; labels 0..classes-1."""
    values, labels = make_classification(
        ROWS, 4, n_informative=3, n_redundant=0, n_classes=classes, random_state=seed
    )
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(values, columns=["x1", "x2", "x3", "x4"])
    frame["city"] = rng.choice(["oslo", "lima", "pune"], ROWS)
    frame["segment"] = pd.Categorical(np.where(values[:, 0] > 0, "retail", "corporate"))
    return frame, labels


def _round_trip(
    model: Any, folder: Path, frame: pd.DataFrame, trusted_types: tuple[str, ...] = (), allow_pickle: bool = False
) -> Predictor:
    """Save with the signature of the training frame and three example rows, then load."""
    signature = infer_signature(frame, model=model)
    save_model(model, folder, signature=signature, input_example=frame.head(3), allow_pickle=allow_pickle)
    return load_folder(folder, allow_pickle=allow_pickle, trusted_types=trusted_types)


def _assert_same_predictions(loaded: Predictor, model: Any, frame: pd.DataFrame, proba: bool = True) -> None:
    expected = model.predict(frame)
    assert np.array_equal(loaded.predict(frame), expected)
    assert loaded.predict(frame).dtype == np.asarray(expected).dtype
    if proba:
        assert np.array_equal(loaded.predict_proba(frame), model.predict_proba(frame))


def test_sklearn_pipeline_with_strings_round_trips(tmp_path: Path) -> None:
    frame, labels = _features(0)
    target = np.array(["stay", "churn"])[labels]
    encode = ColumnTransformer(
        [("scale", StandardScaler(), ["x1", "x2", "x3", "x4"]), ("onehot", OneHotEncoder(), ["city", "segment"])]
    )
    model = Pipeline([("encode", encode), ("classify", LogisticRegression())]).fit(frame, target)

    loaded = _round_trip(model, tmp_path / "model", frame)

    _assert_same_predictions(loaded, model, frame)
    manifest = loaded.manifest
    assert (manifest.flavor, manifest.estimator, manifest.unsafe) == ("sklearn", "sklearn.pipeline.Pipeline", False)
    assert [entry.path for entry in manifest.files] == ["model.skops"]
    assert manifest.untrusted_types == []
    assert {"python", "numpy", "pandas", "scikit-learn", "skops"} <= set(manifest.libraries)
    assert manifest.signature.outputs.classes == ["churn", "stay"]
    assert manifest.input_example[0]["city"] == frame["city"].iloc[0]
    assert read_manifest((tmp_path / "model" / MANIFEST_FILE).read_bytes()) == manifest


def test_sklearn_regressor_round_trips(tmp_path: Path) -> None:
    values, target = make_regression(ROWS, 5, noise=0.5, random_state=1)
    frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(5)])
    model = Ridge(alpha=0.3).fit(frame, target)

    loaded = _round_trip(model, tmp_path / "model", frame)

    _assert_same_predictions(loaded, model, frame, proba=False)
    assert loaded.signature.outputs.kind == "regression"


def test_sklearn_trees_round_trip_once_their_type_is_trusted(tmp_path: Path) -> None:
    values, target = make_regression(ROWS, 4, random_state=2)
    frame = pd.DataFrame(values, columns=["a", "b", "c", "d"])
    model = HistGradientBoostingRegressor(max_iter=5).fit(frame, target)
    predictor_type = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"

    loaded = _round_trip(model, tmp_path / "model", frame, trusted_types=(predictor_type,))

    _assert_same_predictions(loaded, model, frame, proba=False)
    assert loaded.manifest.untrusted_types == [predictor_type]


@pytest.mark.parametrize("classes", [2, 3], ids=["binary", "multiclass"])
def test_lightgbm_classifier_with_a_category_column_round_trips(tmp_path: Path, classes: int) -> None:
    frame, labels = _features(3, classes)
    frame = frame.drop(columns="city")
    target = np.array(["low", "mid", "high"])[labels]
    model = lightgbm.LGBMClassifier(n_estimators=15, min_child_samples=5, verbose=-1).fit(frame, target)

    loaded = _round_trip(model, tmp_path / "model", frame)

    _assert_same_predictions(loaded, model, frame)
    assert isinstance(loaded.native, lightgbm.Booster)
    assert loaded.predict_proba(frame).shape == (ROWS, classes)
    assert loaded.manifest.options["classes"] == model.classes_.tolist()
    assert loaded.manifest.libraries["lightgbm"] == lightgbm.__version__


def test_lightgbm_regressor_round_trips(tmp_path: Path) -> None:
    frame, _ = _features(4)
    frame = frame.drop(columns="city")
    target = frame["x1"] * 2.0 + (frame["segment"] == "retail")
    model = lightgbm.LGBMRegressor(n_estimators=15, verbose=-1).fit(frame, target)

    loaded = _round_trip(model, tmp_path / "model", frame)

    _assert_same_predictions(loaded, model, frame, proba=False)
    with pytest.raises(Exception, match="gives no class probabilities") as caught:
        loaded.predict_proba(frame)
    assert caught.value.field == "predict_proba"


def test_xgboost_classifier_round_trips(tmp_path: Path) -> None:
    frame, labels = _features(5, 3)
    frame = frame[["x1", "x2", "x3", "x4"]]
    model = xgboost.XGBClassifier(n_estimators=8, max_depth=3).fit(frame, labels)

    loaded = _round_trip(model, tmp_path / "model", frame)

    _assert_same_predictions(loaded, model, frame)
    assert type(loaded.native) is xgboost.XGBClassifier
    assert (loaded.manifest.options["class"], [e.path for e in loaded.manifest.files]) == ("XGBClassifier", ["model.ubj"])


def test_xgboost_regressor_round_trips(tmp_path: Path) -> None:
    values, target = make_regression(ROWS, 4, random_state=6)
    frame = pd.DataFrame(values, columns=["a", "b", "c", "d"])
    model = xgboost.XGBRegressor(n_estimators=8, max_depth=3).fit(frame, target)

    loaded = _round_trip(model, tmp_path / "model", frame)

    _assert_same_predictions(loaded, model, frame, proba=False)
    assert type(loaded.native) is xgboost.XGBRegressor


def test_catboost_classifier_with_cat_features_round_trips(tmp_path: Path) -> None:
    frame, labels = _features(7, 3)
    frame["segment"] = frame["segment"].astype(str)
    target = np.array(["a", "b", "c"])[labels]
    model = catboost.CatBoostClassifier(
        iterations=15, depth=3, verbose=0, cat_features=["city", "segment"], allow_writing_files=False
    )
    model.fit(frame, target)

    loaded = _round_trip(model, tmp_path / "model", frame)

    _assert_same_predictions(loaded, model, frame)
    assert type(loaded.native) is catboost.CatBoostClassifier
    assert loaded.signature.outputs.classes == ["a", "b", "c"]


SCALED_MODEL = '''
import json
import numpy as np
from conveyor.registry.packaging import PythonModel


class ScaledThreshold(PythonModel):
    """Class 1 when the weighted sum of the columns passes the cutoff."""

    def __init__(self, cutoff):
        self.cutoff = cutoff
        self.weights = None

    def get_config(self):
        return {"cutoff": self.cutoff}

    def load_artifacts(self, artifacts):
        self.weights = json.loads(artifacts["weights"].read_text())

    def score(self, frame):
        return sum(frame[name].to_numpy() * weight for name, weight in self.weights.items())

    def predict(self, frame):
        return (self.score(frame) > self.cutoff).astype(int)

    def predict_proba(self, frame):
        high = 1.0 / (1.0 + np.exp(-(self.score(frame) - self.cutoff)))
        return np.column_stack([1.0 - high, high])
'''


@pytest.fixture
def custom_model_source(tmp_path: Path) -> Iterator[Path]:
    """A module file defining a PythonModel, importable while the test builds the model."""
    source = tmp_path / "src" / "conveyor_test_scaled_model.py"
    source.parent.mkdir()
    source.write_text(textwrap.dedent(SCALED_MODEL))
    saved_path = list(sys.path)
    sys.path.insert(0, str(source.parent))
    yield source
    sys.path[:] = saved_path
    sys.modules.pop("conveyor_test_scaled_model", None)


def test_python_model_round_trips_from_its_stored_code(tmp_path: Path, custom_model_source: Path) -> None:
    import conveyor_test_scaled_model as module  # created by the fixture

    weights = tmp_path / "weights.json"
    weights.write_text(json.dumps({"x1": 0.5, "x2": -1.5}))
    model = module.ScaledThreshold(cutoff=0.2)
    model.load_artifacts({"weights": weights})
    frame, _ = _features(8)
    save_model(
        model, tmp_path / "model", signature=infer_signature(frame), input_example=frame.head(3),
        artifacts={"weights": weights},
        code_paths=[custom_model_source],
    )
    sys.modules.pop("conveyor_test_scaled_model")
    sys.path.remove(str(custom_model_source.parent))
    custom_model_source.unlink()  # only the stored copy is left to import

    loaded = load_folder(tmp_path / "model")

    _assert_same_predictions(loaded, model, frame)
    assert Path(sys.modules[type(loaded.native).__module__].__file__).parent == (tmp_path / "model" / "code").resolve()
    assert loaded.manifest.options["python_class"] == "conveyor_test_scaled_model:ScaledThreshold"
    assert loaded.manifest.options["config"] == {"cutoff": 0.2}
    assert [entry.path for entry in loaded.manifest.files] == [
        "artifacts/weights/weights.json", "code/conveyor_test_scaled_model.py"
    ]
    assert load_folder(tmp_path / "model").predict(frame).tolist() == model.predict(frame).tolist()


class MedianVote:
    """A model no safe flavor handles: not an estimator of any supported library."""

    def __init__(self, column: str, threshold: float) -> None:
        self.column = column
        self.threshold = threshold

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return (frame[self.column] > self.threshold).to_numpy()


def test_pickle_round_trips_when_allowed(tmp_path: Path) -> None:
    frame, _ = _features(9)
    model = MedianVote("x1", float(frame["x1"].median()))

    loaded = _round_trip(model, tmp_path / "model", frame, allow_pickle=True)

    _assert_same_predictions(loaded, model, frame, proba=False)
    assert (loaded.flavor, loaded.manifest.unsafe, loaded.manifest.files[0].path) == ("pickle", True, "model.joblib")


def test_every_flavor_implements_the_flavor_protocol() -> None:
    assert set(FLAVORS) == {"sklearn", "lightgbm", "xgboost", "catboost", "python", "pickle"}
    for name, flavor in FLAVORS.items():
        assert isinstance(flavor, Flavor), name
        assert flavor.name == name
        assert flavor.unsafe == (name == "pickle")
