"""The ``pickle`` flavor: anything joblib can pickle, for when no safe flavor fits.

Unpickling runs whatever code the file names, so a pickled model is only as safe as
everyone who could have written it. Conveyor writes one only with ``allow_pickle=True``,
marks the manifest ``unsafe`` and loads it only with ``allow_pickle=True`` again.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

from conveyor.registry.packaging.flavors.base import (
    Loaded,
    LoadRequest,
    SaveRequest,
    Stored,
    class_path,
    library_versions,
    method,
    reading,
    require,
)
from conveyor.registry.packaging.manifest import Manifest

FILE = "model.joblib"


class PickleFlavor:
    """Any object with a ``predict`` method, pickled with joblib."""

    name = "pickle"
    unsafe = True
    accepts_files = False

    def handles(self, model: Any) -> bool:
        """True: pickle stores anything (which is the problem)."""
        return True

    def save(self, model: Any, folder: Path, request: SaveRequest) -> Stored:
        """Pickle the model; record joblib's version and that of the model's own library."""
        joblib = require("joblib")
        joblib.dump(model, folder / FILE)
        top_module = type(model).__module__.split(".")[0]
        distributions = metadata.packages_distributions().get(top_module, [])
        return Stored(estimator=class_path(model), libraries=library_versions("joblib", *distributions))

    def load(self, folder: Path, manifest: Manifest, request: LoadRequest) -> Loaded:
        """Unpickle the model (the caller has allowed it)."""
        joblib = require("joblib")
        with reading(manifest, "joblib", FILE):
            native = joblib.load(folder / FILE)
        return Loaded(native=native, predict=native.predict, predict_proba=method(native, "predict_proba"))


FLAVOR = PickleFlavor()
