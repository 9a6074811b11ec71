"""A model version's reference: profiles of its training inputs and of its own outputs
on them, built once when the model is logged with ``training_data`` and stored beside
it, so monitoring never reads the training data again."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd

from conveyor.monitoring.drift import profile_reference
from conveyor.monitoring.sketch import Profile

REFERENCE_FILE = "monitoring-reference.bin"
PREDICTION = "prediction"
SCORE = "score"


@dataclass
class ReferenceProfile:
    """What a version was trained on and what it answered there."""

    inputs: Profile
    outputs: Profile | None
    classes: list[Any] | None

    @property
    def task(self) -> str | None:
        """``classification``, ``regression``, or None when the outputs are unknown."""
        if self.outputs is None:
            return None
        return "classification" if self.classes is not None else "regression"

    def combined(self) -> Profile:
        """Inputs and outputs as one profile, so current data is read in one pass (an input
        named like an output keeps its input sketch)."""
        outputs = self.outputs.columns if self.outputs is not None else {}
        return Profile(rows=self.inputs.rows, columns={**outputs, **self.inputs.columns},
                       types={**(self.outputs.types if self.outputs is not None else {}), **self.inputs.types})

    def to_bytes(self) -> bytes:
        """Compressed, self-describing bytes."""
        body = {"inputs": self.inputs.to_bytes().hex(), "classes": self.classes,
                "outputs": self.outputs.to_bytes().hex() if self.outputs is not None else None}
        return zlib.compress(orjson.dumps(body), 1)

    @classmethod
    def from_bytes(cls, data: bytes) -> ReferenceProfile:
        """Inverse of ``to_bytes``."""
        body = orjson.loads(zlib.decompress(data))
        outputs = Profile.from_bytes(bytes.fromhex(body["outputs"])) if body["outputs"] else None
        return cls(inputs=Profile.from_bytes(bytes.fromhex(body["inputs"])), outputs=outputs, classes=body["classes"])


def model_outputs(model: Any, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[Any] | None] | None:
    """What the model answers on ``frame``, in the prediction log's terms: ``prediction``
    and, for a classifier, ``score`` (the last class's probability for two classes, the
    top probability otherwise); None for a model without scikit-learn's predict API."""
    classes = getattr(model, "classes_", None)
    if classes is not None and hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(frame))
        labels = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
        score = proba[:, -1] if proba.shape[1] == 2 else proba.max(axis=1)
        return pd.DataFrame({PREDICTION: labels.astype(str), SCORE: score}), [_plain(c) for c in classes]
    if hasattr(model, "predict") and classes is None:
        values = np.asarray(model.predict(frame))
        if values.ndim == 1 and values.dtype.kind in "biuf":
            return pd.DataFrame({PREDICTION: values.astype(float)}), None
    return None


def build_reference(training_data: Any, model: Any = None) -> ReferenceProfile:
    """Profile the training inputs (a DataFrame, or a path with no model) and, when the
    model has scikit-learn's predict API, its outputs on them."""
    inputs = profile_reference(training_data)
    answered = model_outputs(model, training_data) if model is not None else None
    if answered is None:
        return ReferenceProfile(inputs=inputs, outputs=None, classes=None)
    outputs, classes = answered
    return ReferenceProfile(inputs=inputs, outputs=profile_reference(outputs), classes=classes)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
