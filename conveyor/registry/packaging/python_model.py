"""The base class of custom models stored with the ``python`` flavor.

Subclass it when a model is more than one library object (an ensemble of boosters, a
rule layer over a classifier, ...). Conveyor stores the class's source files, the
keyword arguments that rebuild it and its artifacts; loading imports that stored code
and runs it, so load a ``python`` model only from a source you trust.

Example:
    >>> class Threshold(PythonModel):
    ...     def __init__(self, cutoff: float) -> None:
    ...         self.cutoff = cutoff
    ...     def get_config(self) -> dict[str, Any]:
    ...         return {"cutoff": self.cutoff}
    ...     def predict(self, frame: pd.DataFrame) -> Any:
    ...         return (frame["score"] > self.cutoff).to_numpy()
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd


class PythonModel:
    """A model written in Python: rebuilt as ``cls(**get_config())``, then given its artifacts.

    Define ``predict_proba(frame)`` as well when the model gives class probabilities.
    """

    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable keyword arguments that rebuild this object with ``cls(**config)``."""
        return {}

    def load_artifacts(self, artifacts: Mapping[str, Path]) -> None:
        """Receive the stored artifacts (name -> local path) after being rebuilt; override to read them."""

    def predict(self, frame: pd.DataFrame) -> Any:
        """Predict on a frame already checked against the model's signature."""
        raise NotImplementedError(f"{type(self).__qualname__} does not define predict()")
