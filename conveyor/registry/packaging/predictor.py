"""A loaded model: checks each frame against the signature, then calls the library."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from conveyor.errors import ValidationError
from conveyor.registry.packaging.flavors import Loaded
from conveyor.registry.packaging.manifest import Manifest
from conveyor.registry.packaging.validation import Mode


class Predictor:
    """One model read from its folder, the same way whatever the flavor.

    Attributes:
        flavor: how the model was stored (``sklearn``, ``lightgbm``, ...).
        manifest: the verified manifest it was loaded from.
        signature: the inputs and outputs it was saved with, if any.
        native: the library object (a Pipeline, a ``lightgbm.Booster``, ...).
        version: set by the registry to the model version it serves.
        uri: set by the registry to the address it was loaded from.
    """

    version: Any = None
    uri: str | None = None

    def __init__(self, manifest: Manifest, loaded: Loaded, schema_mode: Mode = "error") -> None:
        self.flavor = manifest.flavor
        self.manifest = manifest
        self.signature = manifest.signature
        self.native = loaded.native
        self._loaded = loaded
        self._schema_mode = schema_mode

    def __repr__(self) -> str:
        return f"Predictor(flavor={self.flavor!r}, estimator={self.manifest.estimator!r})"

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Predictions for each row of ``frame`` (class labels for classifiers).

        Raises:
            ValidationError: the frame does not fit the signature.
        """
        return np.asarray(self._loaded.predict(self._prepare(frame)))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Class probabilities, shape (rows, classes), for each row of ``frame``.

        Raises:
            ValidationError: the model gives no probabilities, or the frame does not fit.
        """
        return np.asarray(self._probabilities()(self._prepare(frame)))

    def predict_checked(self, rows: np.ndarray, probabilities: bool) -> np.ndarray:
        """The library's own call on rows the caller has already checked against the
        signature, column for column in its order: serving's fast path for small numeric
        requests, which skips building a DataFrame.

        Raises:
            ValidationError: probabilities are asked of a model that gives none.
        """
        call = self._probabilities() if probabilities else self._loaded.predict
        return np.asarray(call(rows))

    def _probabilities(self) -> Any:
        if self._loaded.predict_proba is None:
            raise ValidationError(
                f"model {self.manifest.estimator} gives no class probabilities; use predict()", field="predict_proba"
            )
        return self._loaded.predict_proba

    def _prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        if not isinstance(frame, pd.DataFrame):
            raise ValidationError(f"a model predicts on a DataFrame, got {type(frame).__name__}", field="frame")
        if self.signature is None:
            return frame
        return self.signature.validate_frame(frame, self._schema_mode)
