"""The flavors a model can be stored in, chosen by what the model is.

``DETECTED`` is tried in order and the first flavor whose ``handles`` accepts the model
stores it. LightGBM's and XGBoost's wrappers are scikit-learn estimators too, so they
come before ``sklearn``. ``pickle`` is never detected: it is used only when the caller
allows it and no safe flavor handles the model, or names it.
"""

from __future__ import annotations

from typing import Any

from conveyor.errors import ValidationError
from conveyor.registry.packaging.flavors import (
    catboost,
    lightgbm,
    pickle,
    python,
    sklearn,
    xgboost,
)
from conveyor.registry.packaging.flavors.base import (
    Flavor,
    Loaded,
    LoadRequest,
    SaveRequest,
    Stored,
    class_path,
)

DETECTED: tuple[Flavor, ...] = (python.FLAVOR, lightgbm.FLAVOR, xgboost.FLAVOR, catboost.FLAVOR, sklearn.FLAVOR)
PICKLE: Flavor = pickle.FLAVOR
FLAVORS: dict[str, Flavor] = {flavor.name: flavor for flavor in (*DETECTED, PICKLE)}

__all__ = ["DETECTED", "FLAVORS", "Flavor", "LoadRequest", "Loaded", "SaveRequest", "Stored", "get_flavor", "select_flavor"]


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name``.

    Raises:
        ValidationError: there is no such flavor.
    """
    try:
        return FLAVORS[name]
    except KeyError:
        raise ValidationError(f"unknown model flavor {name!r}; known: {', '.join(FLAVORS)}", field="flavor") from None


def select_flavor(model: Any, name: str | None, allow_pickle: bool) -> Flavor:
    """The flavor to store ``model`` with: the one named, else the first safe one that handles it.

    Raises:
        ValidationError: the named flavor cannot store the model, pickle is needed but not
            allowed, or nothing handles the model.
    """
    if name is not None:
        flavor = get_flavor(name)
        if not flavor.handles(model):
            raise ValidationError(f"the {name} flavor cannot store a {class_path(model)}", field="flavor")
    else:
        flavor = next((candidate for candidate in DETECTED if candidate.handles(model)), PICKLE)
    if flavor.unsafe and not allow_pickle:
        if name is None:
            raise ValidationError(
                f"no safe flavor stores a {class_path(model)} (safe flavors: {', '.join(f.name for f in DETECTED)}); "
                "wrap it in a PythonModel, or pass allow_pickle=True to pickle it (unsafe to load)",
                field="allow_pickle",
            )
        raise ValidationError(f"the {name} flavor needs allow_pickle=True", field="allow_pickle")
    return flavor
