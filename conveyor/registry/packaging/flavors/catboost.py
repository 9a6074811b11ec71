"""The ``catboost`` flavor: CatBoost models in CatBoost's binary ``.cbm`` format.

The file keeps the class names and categorical features; loading builds the class
named in the manifest, only from the fixed map in ``_classes``.
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

FILE = "model.cbm"


def _classes(cb: Any) -> dict[str, type]:
    """The classes this flavor stores and loads, subclasses before their base."""
    return {
        "CatBoostClassifier": cb.CatBoostClassifier,
        "CatBoostRegressor": cb.CatBoostRegressor,
        "CatBoostRanker": cb.CatBoostRanker,
        "CatBoost": cb.CatBoost,
    }


class CatBoostFlavor:
    """``CatBoostClassifier``, ``CatBoostRegressor``, ``CatBoostRanker`` and ``CatBoost``."""

    name = "catboost"
    unsafe = False
    accepts_files = False

    def handles(self, model: Any) -> bool:
        """True for CatBoost models."""
        cb = loaded_module("catboost")
        return cb is not None and isinstance(model, cb.CatBoost)

    def save(self, model: Any, folder: Path, request: SaveRequest) -> Stored:
        """Write the model in CatBoost's binary format."""
        cb = require("catboost")
        options = {"class": pick_class(model, _classes(cb))}
        model.save_model(str(folder / FILE), format="cbm")
        return Stored(estimator=class_path(model), libraries=library_versions("catboost"), options=options)

    def load(self, folder: Path, manifest: Manifest, request: LoadRequest) -> Loaded:
        """Build the mapped class and read the model into it."""
        cb = require("catboost")
        native = mapped_class(manifest, _classes(cb))()
        with reading(manifest, "catboost", FILE):
            native.load_model(str(folder / FILE), format="cbm")
        return Loaded(native=native, predict=native.predict, predict_proba=method(native, "predict_proba"))


FLAVOR = CatBoostFlavor()
