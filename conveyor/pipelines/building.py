"""Turning the ``preprocess`` and ``train`` steps into scikit-learn objects.

The declared transforms become one ``ColumnTransformer`` placed in front of the
estimator, so the fitted model carries its preprocessing wherever it is served.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline as SkPipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
)

from conveyor.errors import ValidationError
from conveyor.pipelines.spec import ColumnTransform, Pipeline, PreprocessStep

_TRANSFORMERS: dict[str, tuple[Any, dict[str, Any]]] = {
    "onehot": (OneHotEncoder, {"handle_unknown": "ignore"}),
    "ordinal": (OrdinalEncoder, {"handle_unknown": "use_encoded_value", "unknown_value": -1}),
    "standard": (StandardScaler, {}),
    "minmax": (MinMaxScaler, {}),
    "robust": (RobustScaler, {}),
    "log": (FunctionTransformer, {"func": np.log1p, "feature_names_out": "one-to-one"}),
    "impute_mean": (SimpleImputer, {"strategy": "mean"}),
    "impute_median": (SimpleImputer, {"strategy": "median"}),
    "impute_constant": (SimpleImputer, {"strategy": "constant"}),
    "tfidf": (TfidfVectorizer, {}),
}


def _transformer(index: int, item: ColumnTransform) -> tuple[str, Any, Any]:
    field = f"preprocess.transforms.{index}"
    if item.transform == "passthrough":
        return (f"{index}-passthrough", "passthrough", item.columns)
    if item.transform == "tfidf" and not isinstance(item.columns, str):
        if len(item.columns) != 1:
            raise ValidationError(f"{field}: tfidf reads one text column; give it as a string", field=f"{field}.columns")
        columns: Any = item.columns[0]
    else:
        columns = item.columns if item.transform == "tfidf" else ([item.columns] if isinstance(item.columns, str) else item.columns)
    factory, defaults = _TRANSFORMERS[item.transform]
    params = {**defaults, **{k: tuple(v) if isinstance(v, list) else v for k, v in item.params.items()}}
    try:
        transformer = factory(**params)
    except TypeError as exc:
        raise ValidationError(f"{field}: {item.transform} does not take these params ({exc})", field=f"{field}.params") from exc
    return (f"{index}-{item.transform}", transformer, columns)


def build_preprocessor(step: PreprocessStep) -> ColumnTransformer:
    """The declared transforms as one unfitted ``ColumnTransformer``."""
    return ColumnTransformer(
        [_transformer(i, item) for i, item in enumerate(step.transforms)],
        remainder=step.remainder,
        verbose_feature_names_out=False,
    )


def preprocessed_columns(step: PreprocessStep) -> list[str]:
    """Every input column the transforms read."""
    names: list[str] = []
    for item in step.transforms:
        for column in [item.columns] if isinstance(item.columns, str) else item.columns:
            if column not in names:
                names.append(column)
    return names


def import_estimator(path: str) -> type:
    """The class at ``package.module.Class`` or ``package.module:Class``."""
    module_name, _, name = path.replace(":", ".").rpartition(".")
    try:
        estimator = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ValidationError(f"train.estimator: cannot import {path!r} ({exc})", field="train.estimator") from exc
    if not callable(getattr(estimator, "fit", None)):
        raise ValidationError(f"train.estimator: {path!r} has no fit method", field="train.estimator")
    return estimator


def _accepts(estimator: type, name: str) -> bool:
    """Whether the estimator takes ``name``: in its signature, or among the params of a
    default instance (LightGBM and XGBoost pass most params through ``**kwargs``)."""
    if name in inspect.signature(estimator).parameters:
        return True
    return issubclass(estimator, BaseEstimator) and name in estimator().get_params()


THREAD_PARAMS = ("n_jobs", "num_threads", "nthread", "thread_count")


def build_estimator(pipeline: Pipeline, params: dict[str, Any], threads: int | None = None) -> Any:
    """An unfitted estimator with ``train.params`` overlaid by ``params``, seeded with the
    pipeline's seed when it takes ``random_state`` and none is given.

    ``threads`` (a worker's share of the cores) becomes ``n_jobs`` of a third-party
    estimator that takes it when no thread count is given: LightGBM's scikit-learn API
    sets its OpenMP thread count itself (to every physical core), which ``threadpoolctl``
    limits cannot override. scikit-learn's own estimators honour those limits.
    """
    estimator = import_estimator(pipeline.train.estimator)
    merged = {**pipeline.train.params, **params}
    if "random_state" not in merged and _accepts(estimator, "random_state"):
        merged["random_state"] = pipeline.seed
    third_party = not estimator.__module__.startswith("sklearn.")
    if threads is not None and third_party and not set(THREAD_PARAMS) & set(merged) and _accepts(estimator, "n_jobs"):
        merged["n_jobs"] = threads
    try:
        return estimator(**merged)
    except TypeError as exc:
        raise ValidationError(f"train.params: {pipeline.train.estimator} rejects them ({exc})", field="train.params") from exc


def build_model(pipeline: Pipeline, params: dict[str, Any], threads: int | None = None) -> Any:
    """The unfitted model: the preprocessor (if declared) in front of the estimator."""
    estimator = build_estimator(pipeline, params, threads)
    if pipeline.preprocess is None:
        return estimator
    return SkPipeline([("preprocess", build_preprocessor(pipeline.preprocess)), ("model", estimator)])


def feature_columns(pipeline: Pipeline, columns: list[str], keys: list[str] = ()) -> list[str]:
    """The model's input columns: ``train.features`` if given, else those the preprocessor
    reads (plus the segment column), else every column but the target, times, groups and keys."""
    if pipeline.train.features:
        chosen = list(pipeline.train.features)
    elif pipeline.preprocess is not None and pipeline.preprocess.remainder == "drop":
        chosen = preprocessed_columns(pipeline.preprocess)
    else:
        excluded = {pipeline.target, pipeline.split.time_column, pipeline.split.group_column,
                    pipeline.evaluate.group_column, *keys}
        chosen = [c for c in columns if c not in excluded]
    if pipeline.train.segment_by and pipeline.train.segment_by not in chosen:
        chosen.append(pipeline.train.segment_by)
    missing = [c for c in chosen if c not in columns]
    if missing:
        raise ValidationError(f"train.features: the dataset has no column {missing[0]!r}", field="train.features")
    return chosen
