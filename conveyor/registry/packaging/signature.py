"""The signature of a model: the columns it reads and what it predicts.

A signature is inferred from a training or example frame and stored in the model's
manifest, so a served model can refuse (or convert) a frame before the library sees it
and fails with a less helpful message, or worse, silently predicts on the wrong types.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, model_validator

from conveyor.errors import ValidationError
from conveyor.registry.packaging.kinds import (
    LogicalType,
    Scalar,
    column_kind,
    dtype_kind,
    json_scalars,
    parse_dtype,
)
from conveyor.registry.packaging.validation import Mode, conform


class ColumnSpec(BaseModel):
    """One input column: its name, logical type, the pandas dtype seen and whether it may be missing.

    ``levels``, when known, are the only values the column accepts: always the
    categories of a categorical column, and the distinct values of a string column that
    had few of them.
    """

    name: str
    type: LogicalType
    dtype: str
    nullable: bool
    levels: list[Scalar] | None = None

    @model_validator(mode="after")
    def _dtype_matches_type(self) -> ColumnSpec:
        kind = dtype_kind(parse_dtype(self.dtype, self.levels))
        if (kind is not None or self.type == "category") and kind != self.type:
            raise ValueError(f"column {self.name!r}: dtype {self.dtype} does not hold {self.type} values")
        return self


class OutputSpec(BaseModel):
    """What the model predicts: the target's name, the kind of task and the classes if any."""

    name: str | None = None
    kind: Literal["classification", "regression", "other"]
    classes: list[Scalar] | None = None
    probabilities: bool = False


class Signature(BaseModel):
    """The inputs a model reads, in order, and its outputs."""

    inputs: list[ColumnSpec]
    outputs: OutputSpec | None = None

    @model_validator(mode="after")
    def _names_are_unique(self) -> Signature:
        names = [spec.name for spec in self.inputs]
        if len(set(names)) != len(names):
            raise ValueError(f"input column names must be unique: {names}")
        return self

    @cached_property
    def _dtypes(self) -> list[Any]:
        """The pandas dtype of each input, parsed once (and not part of equality or JSON)."""
        return [parse_dtype(spec.dtype, spec.levels) for spec in self.inputs]

    def validate_frame(self, frame: pd.DataFrame, mode: Mode = "error") -> pd.DataFrame:
        """A new frame with exactly the signature's columns, in its order and dtypes.

        Args:
            frame: the rows to predict on; extra columns are dropped, order does not matter.
            mode: ``"error"`` accepts only lossless conversions (``int32`` -> ``int64``,
                ``float32`` -> ``float64``, strings within the levels -> ``category``);
                ``"coerce"`` also casts int and bool to float, bool to int, integral floats
                to int and ISO 8601 strings to datetime.

        Raises:
            ValidationError: a column is missing, has the wrong type, missing values where
                none are allowed or values outside its levels; ``field`` names the column.
        """
        return conform(self.inputs, self._dtypes, frame, mode)

    def column_errors(self, frame: pd.DataFrame, mode: Mode = "error") -> dict[str, str]:
        """Every input column that ``frame`` lacks or that does not fit, with the reason:
        what an HTTP answer lists, where ``validate_frame`` stops at the first problem."""
        errors = {}
        for spec, dtype in zip(self.inputs, self._dtypes, strict=True):
            if spec.name not in frame.columns:
                errors[spec.name] = "is missing"
                continue
            try:
                conform([spec], [dtype], frame[[spec.name]], mode)
            except ValidationError as exc:
                errors[spec.name] = exc.message
        return errors


def infer_signature(
    data: pd.DataFrame,
    target: pd.Series | np.ndarray | None = None,
    model: Any = None,
    max_levels: int = 50,
) -> Signature:
    """Read a signature off a frame, and the outputs off a fitted model and/or the target.

    A column is nullable when it has a missing value in ``data``; categorical columns keep
    their categories as levels, string columns their sorted distinct values when there
    are at most ``max_levels`` of them. Levels and nullability are then enforced at
    prediction time, so infer from the training data rather than from a few rows. Outputs: a model with ``classes_`` is a classifier
    (probabilities if it has ``predict_proba``), a scikit-learn style regressor a
    regression; otherwise the target decides: float means regression, anything else
    classification over its sorted distinct values. The target's name names the output.

    Raises:
        ValidationError: ``data`` is not a DataFrame, or a column has a name that is not a
            string or a dtype a signature cannot describe.
    """
    if not isinstance(data, pd.DataFrame):
        raise ValidationError(f"a signature is inferred from a DataFrame, got {type(data).__name__}", field="data")
    if not data.columns.is_unique:
        duplicated = data.columns[data.columns.duplicated()].unique().tolist()
        raise ValidationError(f"column names must be unique; repeated: {duplicated}", field=str(duplicated[0]))
    inputs = [_column_spec(name, data[name], max_levels) for name in data.columns]
    return Signature(inputs=inputs, outputs=_outputs(model, target))


def _column_spec(name: Any, series: pd.Series, max_levels: int) -> ColumnSpec:
    if not isinstance(name, str):
        raise ValidationError(f"column names must be strings; got {name!r}", field=str(name))
    kind = column_kind(series)
    if kind is None:
        raise ValidationError(
            f"column {name!r} has dtype {series.dtype}, which a signature cannot describe "
            "(supported: integer, float, boolean, string, category, datetime)",
            field=name,
        )
    levels: list[Scalar] | None = None
    if kind == "category":
        levels = json_scalars(series.cat.categories, f"categories of column {name!r}", name)
    elif kind == "string":
        distinct = series.dropna().unique()
        if len(distinct) <= max_levels:
            levels = sorted(json_scalars(distinct, f"values of column {name!r}", name))
    return ColumnSpec(name=name, type=kind, dtype=str(series.dtype), nullable=bool(series.isna().any()), levels=levels)


def _outputs(model: Any, target: pd.Series | np.ndarray | None) -> OutputSpec | None:
    name = target.name if isinstance(target, pd.Series) and isinstance(target.name, str) else None
    from_model = _outputs_of_model(model) if model is not None else None
    if from_model is not None:
        return from_model.model_copy(update={"name": name})
    if target is not None:
        return _outputs_of_target(pd.Series(target), name)
    return None


def _attribute(model: Any, name: str) -> Any:
    """``getattr`` that treats any failure (unfitted, unavailable method) as absent."""
    try:
        return getattr(model, name, None)
    except Exception:  # noqa: BLE001  properties of unfitted or partial models raise anything
        return None


def _outputs_of_model(model: Any) -> OutputSpec | None:
    classes = _attribute(model, "classes_")
    if classes is not None and len(classes) > 0:  # CatBoostRegressor has an empty classes_
        labels = json_scalars(classes, "class labels", "classes")
        probabilities = _attribute(model, "predict_proba") is not None
        return OutputSpec(kind="classification", classes=labels, probabilities=probabilities)
    if _estimator_type(model) == "regressor":
        return OutputSpec(kind="regression")
    return None


def _estimator_type(model: Any) -> str | None:
    try:
        return model.__sklearn_tags__().estimator_type
    except Exception:  # noqa: BLE001  no tags, or incomplete third-party ones
        return _attribute(model, "_estimator_type")


def _outputs_of_target(target: pd.Series, name: str | None) -> OutputSpec:
    kind = column_kind(target)
    if kind == "float":
        return OutputSpec(name=name, kind="regression")
    classes: list[Scalar]
    if kind == "category":
        classes = json_scalars(target.cat.categories, "class labels", "classes")
    elif kind in ("integer", "boolean", "string"):
        classes = sorted(json_scalars(target.dropna().unique(), "class labels", "classes"))
    else:
        return OutputSpec(name=name, kind="other")
    return OutputSpec(name=name, kind="classification", classes=classes)
