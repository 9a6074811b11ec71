"""The ``catboost`` flavor: CatBoost models in CatBoost's binary ``.cbm`` format.

The file keeps the class names and categorical features; loading builds the class
named in the manifest, only from the fixed map in ``classes``.
"""

from __future__ import annotations

from typing import Any

from conveyor.registry.packaging.flavors.class_map import ClassMapFlavor


class CatBoostFlavor(ClassMapFlavor):
    """``CatBoostClassifier``, ``CatBoostRegressor``, ``CatBoostRanker`` and ``CatBoost``."""

    name = "catboost"
    module = "catboost"
    file = "model.cbm"
    file_options = {"format": "cbm"}  # noqa: RUF012  read-only class constant

    def classes(self, library: Any) -> dict[str, type]:
        return {
            "CatBoostClassifier": library.CatBoostClassifier,
            "CatBoostRegressor": library.CatBoostRegressor,
            "CatBoostRanker": library.CatBoostRanker,
            "CatBoost": library.CatBoost,
        }

    def base_types(self, library: Any) -> tuple[type, ...]:
        return (library.CatBoost,)


FLAVOR = CatBoostFlavor()
