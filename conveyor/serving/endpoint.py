"""One served model: loaded by alias or version, answering rows with predictions.

The hot path is one signature check (``coerce`` mode: JSON does not tell 1 from 1.0)
and one model call: classifiers are asked for probabilities once and their labels
are read off them. Small requests to numeric models take the fast path
(``fastpath.py``): no DataFrame at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from conveyor.errors import ValidationError
from conveyor.serving.enrichment import FeatureEnricher, FeatureReport
from conveyor.serving.fastpath import RowEncoder
from conveyor.serving.payload import BadRequest, Payload, Problem, problems

if TYPE_CHECKING:
    from conveyor.features.store import FeatureStore
    from conveyor.registry.packaging import Predictor
    from conveyor.registry.service import RegistryService

FAST_PATH_ROWS = 64  # above this, vectorised pandas checks beat a Python loop over values
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


def labels(classes: list[Any], proba: np.ndarray) -> np.ndarray:
    """Each row's most probable class."""
    return np.asarray(classes, dtype=object)[proba.argmax(axis=1)]


def predict_rows(predictor: Predictor, frame: pd.DataFrame, classes: list[Any] | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions and, for classifiers, probabilities, from one model call: a classifier's
    labels are read off its probabilities."""
    if classes is None:
        return predictor.predict(frame), None
    proba = predictor.predict_proba(frame)
    return labels(classes, proba), proba


@dataclass
class Answer:
    """What a model said about a request's rows, and the rows (as sent, plus fetched features)."""

    predictions: np.ndarray
    probabilities: np.ndarray | None
    inputs: Payload
    features: FeatureReport | None = None


class ModelEndpoint:
    """A model loaded for serving, with the version it serves."""

    def __init__(self, name: str, predictor: Predictor, version: int, uri: str | None = None,
                 enricher: FeatureEnricher | None = None) -> None:
        self.name = name
        self.predictor = predictor
        self.version = version
        self.uri = uri
        self.enricher = enricher
        self.classes = output_classes(predictor)
        self.encoder = RowEncoder.probe(predictor, self.classes is not None)

    @classmethod
    def load(cls, registry: RegistryService, reference: ModelReference,
             features: Callable[[], FeatureStore] | None = None) -> ModelEndpoint:
        """The version ``reference`` names, loaded for serving (``coerce`` mode: JSON does not
        tell 1 from 1.0); with ``features``, a version trained on a feature service fetches
        the columns a request lacks from the online store."""
        predictor = registry.load_model(reference.uri, schema_mode="coerce")
        service = predictor.version.feature_service
        enricher = None
        if service and features is not None and predictor.signature is not None:
            enricher = FeatureEnricher(features, service, [spec.name for spec in predictor.signature.inputs])
        return cls(reference.name, predictor, int(predictor.version.version), reference.uri, enricher)

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/models/{name}`` answers: version, flavor and signature."""
        signature = self.predictor.signature
        return {
            "name": self.name, "version": self.version, "uri": self.uri, "flavor": self.predictor.flavor,
            "fast_path": self.encoder is not None, "feature_service": self.enricher.service if self.enricher else None,
            "signature": signature.model_dump(mode="json") if signature else None,
        }

    def answer(self, payload: Payload) -> Answer:
        """Predictions (and class probabilities) for the request's rows.

        Raises:
            BadRequest: naming every column that does not fit the signature.
        """
        report = None
        if self.enricher is not None:
            payload, report = self.enricher.enrich(payload)
        if self.encoder is not None and len(payload) <= FAST_PATH_ROWS:
            rows = self.encoder.encode(payload)
            if rows is not None:
                out = self.encoder.predict(rows)
                if self.classes is None:
                    return Answer(out, None, payload, report)
                return Answer(labels(self.classes, out), out, payload, report)
        frame = payload.frame
        try:
            predictions, proba = predict_rows(self.predictor, frame, self.classes)
        except ValidationError as exc:
            found = problems(self.predictor.signature, frame) if self.predictor.signature else []
            found += report.problems() if report is not None else []
            raise BadRequest(found or [Problem(exc.field or "body", exc.message)]) from None
        return Answer(predictions, proba, payload, report)
