"""The ``xgboost`` flavor: XGBoost models in XGBoost's UBJSON format.

Loading builds the wrapper class named in the manifest, but only from the fixed map in
``classes``: a class name read from a file is never imported. Wrappers keep their
parameters and classes in the file.
"""

from __future__ import annotations

from typing import Any

from conveyor.registry.packaging.flavors.base import Loaded
from conveyor.registry.packaging.flavors.class_map import ClassMapFlavor


class XGBoostFlavor(ClassMapFlavor):
    """XGBoost's scikit-learn wrappers and a bare ``Booster``."""

    name = "xgboost"
    module = "xgboost"
    file = "model.ubj"

    def classes(self, library: Any) -> dict[str, type]:
        return {
            "XGBRFClassifier": library.XGBRFClassifier,
            "XGBRFRegressor": library.XGBRFRegressor,
            "XGBClassifier": library.XGBClassifier,
            "XGBRegressor": library.XGBRegressor,
            "XGBRanker": library.XGBRanker,
            "Booster": library.Booster,
        }

    def base_types(self, library: Any) -> tuple[type, ...]:
        return (library.XGBModel, library.Booster)

    def libraries(self, model: Any, library: Any) -> tuple[str, ...]:
        return ("xgboost",) if isinstance(model, library.Booster) else ("xgboost", "scikit-learn")

    def wrap(self, native: Any, library: Any) -> Loaded:
        if not isinstance(native, library.Booster):
            return super().wrap(native, library)

        def predict(frame: Any) -> Any:
            return native.predict(library.DMatrix(frame, enable_categorical=True))

        return Loaded(native=native, predict=predict, predict_proba=None)


FLAVOR = XGBoostFlavor()
