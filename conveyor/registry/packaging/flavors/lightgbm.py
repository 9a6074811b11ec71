"""The ``lightgbm`` flavor: LightGBM models in LightGBM's own text format.

Loading never unpickles: the text file becomes a ``lightgbm.Booster``. For classifiers
the manifest keeps the class labels, so ``predict`` returns them and ``predict_proba``
has one column per class, exactly as ``LGBMClassifier`` does. The text file also keeps
the categories of pandas categorical columns, so such frames predict as in training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from conveyor.errors import ValidationError
from conveyor.registry.packaging.flavors.base import (
    Loaded,
    LoadRequest,
    SaveRequest,
    Stored,
    class_path,
    label_options,
    labels_array,
    library_versions,
    loaded_module,
    reading,
    require,
)
from conveyor.registry.packaging.manifest import Manifest

FILE = "model.txt"


class _Classifier:
    """Class labels and probabilities from a booster, as ``LGBMClassifier`` computes them."""

    def __init__(self, booster: Any, labels: np.ndarray) -> None:
        self.booster = booster
        self.labels = labels

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        scores = self.booster.predict(frame)
        return scores if scores.ndim == 2 else np.vstack((1.0 - scores, scores)).transpose()

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.labels[np.argmax(self.predict_proba(frame), axis=1)]


class LightGBMFlavor:
    """``LGBMClassifier``, ``LGBMRegressor`` (any ``LGBMModel``) and a bare ``Booster``."""

    name = "lightgbm"
    unsafe = False
    accepts_files = False

    def handles(self, model: Any) -> bool:
        """True for LightGBM's scikit-learn wrappers and boosters."""
        lgb = loaded_module("lightgbm")
        return lgb is not None and isinstance(model, (lgb.LGBMModel, lgb.Booster))

    def save(self, model: Any, folder: Path, request: SaveRequest) -> Stored:
        """Write the booster as text; keep a classifier's labels in the options.

        Raises:
            ValidationError: the classifier uses a custom objective function, whose raw
                scores the stored booster cannot turn into probabilities.
        """
        lgb = require("lightgbm")
        if isinstance(model, lgb.Booster):
            model.save_model(str(folder / FILE))
            return Stored(estimator=class_path(model), libraries=library_versions("lightgbm"))
        options: dict[str, Any] = {}
        if isinstance(model, lgb.LGBMClassifier):
            if callable(model.objective):
                raise ValidationError(
                    f"{class_path(model)} has a custom objective function, which a LightGBM model file does not keep",
                    field="model",
                )
            options = label_options(model.classes_)
        model.booster_.save_model(str(folder / FILE))
        return Stored(estimator=class_path(model), libraries=library_versions("lightgbm", "scikit-learn"), options=options)

    def load(self, folder: Path, manifest: Manifest, request: LoadRequest) -> Loaded:
        """Read the booster; wrap it to give labels and probabilities when it is a classifier."""
        lgb = require("lightgbm")
        with reading(manifest, "lightgbm", FILE):
            booster = lgb.Booster(model_file=str(folder / FILE))
        if "classes" not in manifest.options:
            return Loaded(native=booster, predict=booster.predict, predict_proba=None)
        classifier = _Classifier(booster, labels_array(manifest.options))
        return Loaded(native=booster, predict=classifier.predict, predict_proba=classifier.predict_proba)


FLAVOR = LightGBMFlavor()
