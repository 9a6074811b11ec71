"""Scoring a model on labelled rows with the metrics of the pipeline's task; shared by
tuning trials, the ``evaluate`` step and the champion comparison of the ``gate``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from conveyor.pipelines import evaluation
from conveyor.pipelines.spec import Pipeline
from conveyor.registry.packaging import Predictor


@dataclass(frozen=True)
class Scorer:
    """What scoring needs beyond the model: the feature columns, the class order of the
    training labels and the scale of MASE (forecasting)."""

    pipeline: Pipeline
    features: list[str]
    classes: list[Any] | None = None
    mase_scale: float | None = None

    @classmethod
    def for_training(cls, pipeline: Pipeline, features: list[str], train: pd.DataFrame) -> Scorer:
        """A scorer whose classes and MASE scale come from the training rows."""
        target = train[pipeline.target]
        classes = sorted(target.dropna().unique().tolist()) if pipeline.task in ("binary", "multiclass") else None
        scale = None
        if pipeline.task == "forecasting":
            ordered = train.sort_values(pipeline.split.time_column, kind="stable") if pipeline.split.time_column else train
            groups = ordered[pipeline.train.segment_by].to_numpy() if pipeline.train.segment_by else None
            scale = evaluation.mase_scale(ordered[pipeline.target].to_numpy(dtype=float), pipeline.evaluate.season, groups)
        return cls(pipeline, features, classes, scale)

    def labels(self, rows: pd.DataFrame) -> np.ndarray:
        """The target of ``rows`` encoded as the metrics expect."""
        return evaluation.encode_labels(self.pipeline.task, rows[self.pipeline.target], self.classes)

    def predictions(self, model: Any, rows: pd.DataFrame) -> np.ndarray:
        """The model's scores of ``rows``: probabilities, predictions or anomaly scores.

        A loaded outlier detector (IsolationForest) has no probabilities, so its anomaly
        score comes from the library object, after the rows are checked against the signature.
        """
        frame = rows[self.features]
        if self.pipeline.task == "anomaly" and isinstance(model, Predictor) and not hasattr(model.native, "predict_proba"):
            frame = model.signature.validate_frame(frame) if model.signature else frame
            model = model.native
        return evaluation.predict_scores(self.pipeline.task, model, frame)

    def metrics(self, rows: pd.DataFrame, scores: np.ndarray) -> dict[str, float | None]:
        """Every metric of the task for ``scores`` of ``rows``."""
        spec = self.pipeline.evaluate
        groups = rows[spec.group_column].to_numpy() if spec.group_column else None
        return evaluation.metrics(
            self.pipeline.task, self.labels(rows), scores, groups=groups, k=spec.k,
            mase_scale=self.mase_scale, relevant=spec.relevant,
        )

    def score(self, model: Any, rows: pd.DataFrame) -> dict[str, float | None]:
        """Predict ``rows`` with ``model`` and measure the predictions."""
        return self.metrics(rows, self.predictions(model, rows))
