"""One served model: loaded by alias or version, answering rows with predictions.

The hot path is one signature check (``coerce`` mode: JSON does not tell 1 from 1.0)
and one model call: classifiers are asked for probabilities once and their labels
are read off them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from conveyor.errors import ValidationError
from conveyor.serving.payload import BadRequest, Problem, problems

if TYPE_CHECKING:
    from conveyor.registry.packaging import Predictor
    from conveyor.registry.service import RegistryService

_REFERENCE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)(?:@(?P<alias>[A-Za-z0-9_-]+)|/(?P<version>\d+|latest))?$")


@dataclass(frozen=True)
class ModelReference:
    """``credit-risk@champion``, ``credit-risk/3`` or ``credit-risk`` (its champion)."""

    name: str
    selector: str

    @classmethod
    def parse(cls, text: str) -> ModelReference:
        """Read a reference as users write it on the command line."""
        match = _REFERENCE.match(text)
        if match is None:
            raise ValidationError(f"model {text!r}: expected NAME@ALIAS, NAME/VERSION or NAME", field="model")
        if match["alias"]:
            return cls(match["name"], f"@{match['alias']}")
        return cls(match["name"], f"/{match['version']}" if match["version"] else "@champion")

    @property
    def uri(self) -> str:
        """The registry URI it resolves through."""
        return f"models:/{self.name}{self.selector}"


def output_classes(predictor: Predictor) -> list[Any] | None:
    """The class labels of a classifier, in its probability columns' order; None otherwise."""
    outputs = predictor.signature.outputs if predictor.signature else None
    return list(outputs.classes) if outputs is not None and outputs.classes else None


def predict_rows(predictor: Predictor, frame: pd.DataFrame, classes: list[Any] | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions and, for classifiers, probabilities, from one model call: a classifier's
    labels are read off its probabilities."""
    if classes is None:
        return predictor.predict(frame), None
    proba = predictor.predict_proba(frame)
    return np.asarray(classes, dtype=object)[proba.argmax(axis=1)], proba


class ModelEndpoint:
    """A model loaded for serving, with the version it serves."""

    def __init__(self, registry: RegistryService, reference: ModelReference) -> None:
        self.reference = reference
        self.predictor: Predictor = registry.load_model(reference.uri, schema_mode="coerce")
        self.version = int(self.predictor.version.version)
        self.classes = output_classes(self.predictor)

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/models/{name}`` answers: version, flavor and signature."""
        signature = self.predictor.signature
        return {
            "name": self.reference.name, "version": self.version, "uri": self.reference.uri,
            "flavor": self.predictor.flavor,
            "signature": signature.model_dump(mode="json") if signature else None,
        }

    def predict(self, frame: pd.DataFrame) -> dict[str, Any]:
        """Predictions (and class probabilities) for the rows; ``BadRequest`` names every
        column that does not fit the signature."""
        try:
            predictions, proba = predict_rows(self.predictor, frame, self.classes)
        except ValidationError as exc:
            found = problems(self.predictor.signature, frame) if self.predictor.signature else []
            raise BadRequest(found or [Problem(exc.field or "body", exc.message)]) from None
        if proba is None:
            return {"predictions": predictions}
        return {"predictions": predictions.tolist(), "probabilities": proba, "classes": self.classes}
