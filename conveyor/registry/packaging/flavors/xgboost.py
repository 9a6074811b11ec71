"""The ``xgboost`` flavor: XGBoost models in XGBoost's UBJSON format.

Loading builds the wrapper class named in the manifest, but only from the fixed map in
``_classes``: a class name read from a file is never imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conveyor.registry.packaging.flavors.base import (
    Loaded,
    LoadRequest,
    SaveRequest,
    Stored,
    class_path,
    library_versions,
    loaded_module,
    mapped_class,
    method,
    pick_class,
    reading,
    require,
)
from conveyor.registry.packaging.manifest import Manifest

FILE = "model.ubj"


def _classes(xgb: Any) -> dict[str, type]:
    """The classes this flavor stores and loads, subclasses before their bases."""
    return {
        "XGBRFClassifier": xgb.XGBRFClassifier,
        "XGBRFRegressor": xgb.XGBRFRegressor,
        "XGBClassifier": xgb.XGBClassifier,
        "XGBRegressor": xgb.XGBRegressor,
        "XGBRanker": xgb.XGBRanker,
        "Booster": xgb.Booster,
    }


class XGBoostFlavor:
    """XGBoost's scikit-learn wrappers and a bare ``Booster``."""

    name = "xgboost"
    unsafe = False
    accepts_files = False

    def handles(self, model: Any) -> bool:
        """True for XGBoost's scikit-learn wrappers and boosters."""
        xgb = loaded_module("xgboost")
        return xgb is not None and isinstance(model, (xgb.XGBModel, xgb.Booster))

    def save(self, model: Any, folder: Path, request: SaveRequest) -> Stored:
        """Write the model (wrappers keep their parameters and classes in it) as UBJSON."""
        xgb = require("xgboost")
        options = {"class": pick_class(model, _classes(xgb))}
        model.save_model(str(folder / FILE))
        libraries = ("xgboost",) if isinstance(model, xgb.Booster) else ("xgboost", "scikit-learn")
        return Stored(estimator=class_path(model), libraries=library_versions(*libraries), options=options)

    def load(self, folder: Path, manifest: Manifest, request: LoadRequest) -> Loaded:
        """Build the mapped class and read the model into it."""
        xgb = require("xgboost")
        cls = mapped_class(manifest, _classes(xgb))
        native = cls()
        with reading(manifest, "xgboost", FILE):
            native.load_model(str(folder / FILE))
        if isinstance(native, xgb.Booster):

            def predict(frame: Any) -> Any:
                return native.predict(xgb.DMatrix(frame, enable_categorical=True))

            return Loaded(native=native, predict=predict, predict_proba=None)
        return Loaded(native=native, predict=native.predict, predict_proba=method(native, "predict_proba"))


FLAVOR = XGBoostFlavor()
