"""What differs between validating a classifier and a regressor, behind one interface.

``task_of`` reads a predictor's signature and returns ``Classification`` or
``Regression``; the rest of the package asks the task for target encoding,
metrics, the primary metric and its direction, and plot data, never which task
it has.

Predictors are duck-typed: ``predict(frame)``, ``predict_proba(frame)`` (classifiers,
columns in the order of ``signature.outputs.classes``) and ``signature.outputs.kind``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from conveyor.errors import ValidationError
from conveyor.governance.validation import metrics
from conveyor.governance.validation.checks import mape_check
from conveyor.governance.validation.schemas import CalibrationBin, Check, Curves


@dataclass(frozen=True)
class Scored:
    """A predictor's outputs on the labelled rows: ``output`` is probabilities (n, k) or predictions (n,)."""

    y: np.ndarray
    output: np.ndarray

    def take(self, mask: np.ndarray) -> Scored:
        """The rows where ``mask`` is true."""
        return Scored(self.y[mask], self.output[mask])


class Task(Protocol):
    """How one kind of model is scored and compared."""

    name: Literal["classification", "regression"]
    primary: str
    degradation_label: str
    labels: tuple[str, ...]

    def score(self, predictor: Any, features: pd.DataFrame, target: pd.Series) -> Scored: ...

    def metrics(self, scored: Scored) -> dict[str, float | None]: ...

    def degradation(self, value: float, reference: float) -> float: ...

    def noise(self, scored: Scored, reference: float) -> float | None: ...

    def calibration(self, scored: Scored) -> list[CalibrationBin] | None: ...

    def curves(self, scored: Scored) -> Curves: ...

    def checks(self, scored: Scored) -> list[Check]: ...


class Classification:
    """Classifiers, scored on ``predict_proba``; the primary metric is ROC AUC.

    For a binary model the positive class is ``classes[1]``: its probability is the
    score behind ROC AUC, PR AUC, KS, Brier and calibration.
    """

    name: Literal["classification"] = "classification"
    primary = "roc_auc"
    degradation_label = "drop"

    def __init__(self, classes: list[Any]) -> None:
        self.classes = list(classes)
        self.labels = tuple(str(c) for c in self.classes)

    def encode(self, target: pd.Series) -> np.ndarray:
        """Class codes of ``target``: positions in ``classes``, matched by value, else by text.

        Raises:
            ValidationError: a value is none of the classes.
        """
        values = target.astype(object)
        by_text = values.astype(str).map({c: i for i, c in enumerate(self.labels)})
        codes = values.map({c: i for i, c in enumerate(self.classes)}).fillna(by_text)
        unknown = target[codes.isna()].unique()
        if len(unknown):
            shown = ", ".join(repr(v) for v in unknown[:5])
            raise ValidationError(
                f"target {target.name!r} holds values that are not classes of the model ({list(self.labels)}): {shown}",
                field=str(target.name),
            )
        return codes.to_numpy(dtype=int)

    def score(self, predictor: Any, features: pd.DataFrame, target: pd.Series) -> Scored:
        """Encode ``target`` and predict class probabilities on ``features``."""
        y = self.encode(target)
        proba = np.asarray(predictor.predict_proba(features), dtype=float)
        if proba.shape != (len(features), len(self.classes)):
            raise ValidationError(
                f"predict_proba returned shape {proba.shape}, expected ({len(features)}, {len(self.classes)})",
                field="predict_proba",
            )
        return Scored(y, proba)

    def metrics(self, scored: Scored) -> dict[str, float | None]:
        """Binary or multiclass metrics, by the number of classes."""
        if len(self.classes) == 2:
            return metrics.binary_metrics(scored.y, scored.output)
        return metrics.multiclass_metrics(scored.y, scored.output)

    def degradation(self, value: float, reference: float) -> float:
        """How much lower ``value`` (an AUC) is than ``reference``."""
        return reference - value

    def noise(self, scored: Scored, reference: float) -> float | None:
        """Standard error of the AUC; multiclass combines the one-vs-rest errors as for a mean."""
        columns = [1] if len(self.classes) == 2 else range(len(self.classes))
        errors = [metrics.auc_standard_error(scored.y == c, scored.output[:, c]) for c in columns]
        if any(e is None for e in errors):
            return None
        return float(np.sqrt(np.sum(np.square(errors))) / len(errors))

    def calibration(self, scored: Scored) -> list[CalibrationBin] | None:
        """Calibration bins of the positive class; ``None`` for multiclass models."""
        if len(self.classes) != 2:
            return None
        return metrics.calibration_bins(scored.y, scored.output[:, 1])

    def curves(self, scored: Scored) -> Curves:
        """ROC curves of one predictor."""
        return Curves(roc=metrics.roc_curves(scored.y, scored.output, self.labels))

    def checks(self, scored: Scored) -> list[Check]:
        """Classification adds no checks of its own."""
        return []


class Regression:
    """Regressors, scored on ``predict``; the primary metric is RMSE, compared relatively."""

    name: Literal["regression"] = "regression"
    primary = "rmse"
    degradation_label = "relative increase"
    labels: tuple[str, ...] = ()

    def score(self, predictor: Any, features: pd.DataFrame, target: pd.Series) -> Scored:
        """Check ``target`` is numeric and predict on ``features``.

        Raises:
            ValidationError: ``target`` holds values that are not numbers.
        """
        if not pd.api.types.is_numeric_dtype(target) or pd.api.types.is_bool_dtype(target):
            raise ValidationError(
                f"target {target.name!r} of a regression model must be numeric, got {target.dtype}",
                field=str(target.name),
            )
        y = target.to_numpy(dtype=float)
        predicted = np.asarray(predictor.predict(features), dtype=float).reshape(len(features), -1)
        if predicted.shape[1] != 1:
            raise ValidationError(f"predict returned {predicted.shape[1]} outputs per row, expected 1", field="predict")
        return Scored(y, predicted[:, 0])

    def metrics(self, scored: Scored) -> dict[str, float | None]:
        """RMSE, MAE, MAPE and R²."""
        return metrics.regression_metrics(scored.y, scored.output)

    def degradation(self, value: float, reference: float) -> float:
        """Relative increase of ``value`` (an RMSE) over ``reference``."""
        if reference == 0:
            return 0.0 if value == 0 else float("inf")
        return (value - reference) / reference

    def noise(self, scored: Scored, reference: float) -> float | None:
        """Standard error of the RMSE, relative to ``reference`` like ``degradation``."""
        error = metrics.rmse_standard_error(scored.y, scored.output)
        return None if error is None or reference == 0 else error / reference

    def calibration(self, scored: Scored) -> list[CalibrationBin] | None:
        """Regression has no calibration bins."""
        return None

    def curves(self, scored: Scored) -> Curves:
        """A sample of actual against predicted values."""
        return Curves(sample=metrics.prediction_sample(scored.y, scored.output))

    def checks(self, scored: Scored) -> list[Check]:
        """How many rows MAPE leaves out for a zero target."""
        return [mape_check(int((scored.y == 0).sum()))]


def task_of(predictor: Any, role: str) -> Classification | Regression:
    """The task a predictor's signature declares; ``role`` names it in errors.

    Raises:
        ValidationError: the predictor has no signature, its output kind is neither
            classification nor regression, or a classifier declares fewer than two classes.
    """
    if getattr(predictor, "signature", None) is None:
        raise ValidationError(f"{role} has no signature, so its kind of output is unknown", field=role)
    outputs = predictor.signature.outputs
    if outputs.kind == "regression":
        return Regression()
    if outputs.kind != "classification":
        raise ValidationError(
            f"{role} has output kind {outputs.kind!r}; only classification and regression can be validated",
            field=role,
        )
    classes = list(outputs.classes or [])
    if len(classes) < 2:
        raise ValidationError(f"{role} is a classifier with {len(classes)} classes; it needs at least 2", field=role)
    return Classification(classes)
