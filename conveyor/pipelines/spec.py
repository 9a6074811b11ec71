"""The pipeline definition: a Pydantic schema that a YAML file or Python code fills in.

Every step is optional but runs in data-flow order: ``dataset → split → preprocess →
tune → train → evaluate → gate → register``. The same object comes from
``Pipeline.from_yaml(path)`` or from ``Pipeline(name=..., dataset=..., train=...)``.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Literal

import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from conveyor.pipelines.executors import ExecutorSettings

Task = Literal["binary", "multiclass", "regression", "forecasting", "ranking", "anomaly"]
STEPS = ("dataset", "split", "preprocess", "tune", "train", "evaluate", "gate", "register")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*[.:][A-Za-z_]\w*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def parse_time(text: str) -> pd.Timestamp:
    """An ISO 8601 date or time as a UTC timestamp (a time without an offset is UTC).

    Relative words (``now``, ``today``) are refused: a pipeline must mean the same rows
    each time it runs, and its cached steps are keyed on the text.

    Raises:
        ValueError: ``text`` is not a date or time.
    """
    try:
        stamp = None if text.strip().lower() in ("now", "today") else pd.Timestamp(text)
    except ValueError:
        stamp = None
    if stamp is None or pd.isna(stamp):
        raise ValueError(f"{text!r} is not an ISO 8601 date or time such as '2024-01-01' or '2024-01-01T12:00:00Z'")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _exactly_one(path: str | None, query: str | None) -> None:
    if (path is None) == (query is None):
        raise ValueError("give exactly one of 'path' or 'query'")


class TableInput(_Strict):
    """Rows read from a Parquet/CSV file or glob (relative to the pipeline file), or a DuckDB query."""

    path: str | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> TableInput:
        _exactly_one(self.path, self.query)
        return self


class DatasetStep(_Strict):
    """The training data: a file or query, or a feature service joined point-in-time to
    ``entities`` (a file or query holding entity keys, the event time and the label).

    ``categorical`` columns become pandas categories: LightGBM, XGBoost and CatBoost use
    them natively, and the model's signature keeps their levels.

    ``since`` and ``until`` (ISO 8601 dates or times; without an offset they are UTC) keep
    the rows whose ``timestamp_column`` is at or after ``since`` and before ``until``, so a
    retrain can take "the last 180 days" with ``--set dataset.since=...``. For a
    ``feature_service`` dataset the window applies to the entity rows, before the
    point-in-time join.
    """

    path: str | None = None
    query: str | None = None
    feature_service: str | None = None
    entities: TableInput | None = None
    timestamp_column: str = "event_timestamp"
    since: str | None = None
    until: str | None = None
    columns: list[str] | None = None
    drop: list[str] = []
    categorical: list[str] = []

    @field_validator("since", "until", mode="before")
    @classmethod
    def _date_as_text(cls, value: Any) -> Any:
        """YAML reads ``2024-01-01`` as a date: keep it as the ISO text it was written as."""
        return value.isoformat() if isinstance(value, date) else value

    @field_validator("since", "until")
    @classmethod
    def _a_time(cls, value: str | None) -> str | None:
        if value is not None:
            parse_time(value)
        return value

    @field_validator("until")
    @classmethod
    def _after_since(cls, value: str | None, info: ValidationInfo) -> str | None:
        since = info.data.get("since")
        if value is not None and since is not None and parse_time(since) >= parse_time(value):
            raise ValueError(f"'until' ({value}) must be after 'since' ({since})")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> DatasetStep:
        if self.feature_service is not None:
            if self.entities is None or self.path is not None or self.query is not None:
                raise ValueError("a 'feature_service' dataset takes 'entities' (a path or query) and no 'path' or 'query'")
        elif self.entities is not None:
            raise ValueError("'entities' is for a 'feature_service' dataset")
        else:
            _exactly_one(self.path, self.query)
        return self


class SplitStep(_Strict):
    """How rows become training and test rows, and the folds tuning validates on.

    ``random`` and ``stratified`` shuffle with the pipeline's seed; ``group`` keeps each
    value of ``group_column`` on one side; ``time`` puts rows before ``cutoff`` (or the
    earliest ``1 - test_size`` share) in training, and its tuning folds are rolling
    windows: each fold trains on everything before its validation window.
    """

    method: Literal["random", "stratified", "group", "time"] = "random"
    test_size: float = Field(0.2, gt=0, lt=1)
    time_column: str | None = None
    cutoff: str | None = None
    group_column: str | None = None
    folds: int = Field(3, ge=2, le=20)

    @model_validator(mode="after")
    def _columns_for_method(self) -> SplitStep:
        if self.method == "time" and not self.time_column:
            raise ValueError("method 'time' needs 'time_column'")
        if self.method == "group" and not self.group_column:
            raise ValueError("method 'group' needs 'group_column'")
        if self.cutoff is not None and self.method != "time":
            raise ValueError("'cutoff' is for method 'time'")
        return self


Transform = Literal[
    "onehot", "ordinal", "standard", "minmax", "robust", "log", "impute_mean", "impute_median",
    "impute_constant", "tfidf", "passthrough",
]


class ColumnTransform(_Strict):
    """One transform applied to some columns; ``params`` go to the scikit-learn transformer."""

    columns: list[str] | str
    transform: Transform
    params: dict[str, Any] = {}

    @field_validator("columns")
    @classmethod
    def _not_empty(cls, value: list[str] | str) -> list[str] | str:
        if not value:
            raise ValueError("list at least one column")
        return value


class PreprocessStep(_Strict):
    """Declared column transforms, built into a ``ColumnTransformer`` that travels inside the model."""

    transforms: list[ColumnTransform] = Field(min_length=1)
    remainder: Literal["drop", "passthrough"] = "drop"


class TrainStep(_Strict):
    """The estimator by import path (``lightgbm.LGBMClassifier`` or ``pkg.module:Class``) and its params.

    ``segment_by`` trains one model per value of that column; they are registered as one
    model whose predictor dispatches each row to its segment's model.
    """

    estimator: str
    params: dict[str, Any] = {}
    features: list[str] | None = None
    segment_by: str | None = None

    @field_validator("estimator")
    @classmethod
    def _import_path(cls, value: str) -> str:
        if not _IMPORT_PATH.match(value):
            raise ValueError(f"{value!r} is not an import path such as 'sklearn.linear_model.LogisticRegression'")
        return value


class Distribution(_Strict):
    """One parameter's search range."""

    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _range(self) -> Distribution:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs 'choices'")
        elif self.low is None or self.high is None or self.low >= self.high:
            raise ValueError(f"an {self.type} parameter needs 'low' < 'high'")
        elif self.log and self.low <= 0:
            raise ValueError("a log-scaled range needs 'low' > 0")
        return self


class TuneStep(_Strict):
    """An Optuna search over ``train.params``: each trial cross-validates on the split's folds."""

    space: dict[str, Distribution] = Field(min_length=1)
    n_trials: int = Field(20, ge=1, le=100_000)
    timeout: float | None = Field(None, gt=0)
    metric: str | None = None
    direction: Literal["maximize", "minimize"] | None = None
    pruning: bool = True
    parallelism: int = Field(2, ge=1, le=256)
    sampler: Literal["tpe", "random"] = "tpe"


class EvaluateStep(_Strict):
    """Metrics of the trained model on the test rows, suited to the task."""

    metrics: list[str] | None = None
    k: int = Field(10, ge=1)
    group_column: str | None = None
    relevant: float | None = None
    season: int = Field(1, ge=1)


class Threshold(_Strict):
    """Bounds a metric must stay within."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> Threshold:
        if self.min is None and self.max is None:
            raise ValueError("give 'min', 'max' or both")
        return self


class BeatChampion(_Strict):
    """The candidate must beat the model behind ``alias`` by ``by`` on the same test rows."""

    metric: str | None = None
    by: float = Field(0.0, ge=0)
    alias: str = "champion"


class GateStep(_Strict):
    """What the candidate must achieve before it is registered under an alias."""

    thresholds: dict[str, Threshold] = {}
    beat_champion: BeatChampion | None = None


class RegisterStep(_Strict):
    """Register the model as the next version of ``model``; set ``alias`` if the gate passes."""

    model: str
    alias: str | None = None
    description: str | None = None
    validate_version: bool = Field(True, alias="validate")
    risk_tier: Literal["low", "medium", "high"] | None = None
    owner_team: str | None = None
    intended_use: str | None = None

    @field_validator("model")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r} is not a model name (letters, digits, '_', '.', '-')")
        return value


class Pipeline(_Strict):
    """A training pipeline: the task, the target, and its steps."""

    name: str
    task: Task
    target: str
    experiment: str | None = None
    seed: int = 42
    executor: ExecutorSettings = ExecutorSettings()
    dataset: DatasetStep
    split: SplitStep = SplitStep()
    preprocess: PreprocessStep | None = None
    tune: TuneStep | None = None
    train: TrainStep
    evaluate: EvaluateStep = EvaluateStep()
    gate: GateStep | None = None
    registration: RegisterStep | None = Field(None, alias="register")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r} is not a pipeline name (letters, digits, '_', '.', '-')")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Pipeline:
        if self.split.method == "stratified" and self.task not in ("binary", "multiclass", "anomaly"):
            raise ValueError("split method 'stratified' is for classification and anomaly tasks")
        if self.task == "ranking" and not self.evaluate.group_column:
            raise ValueError("task 'ranking' needs 'evaluate.group_column' (the query or user column)")
        if self.gate and self.gate.beat_champion and self.registration is None:
            raise ValueError("'gate.beat_champion' needs a 'register' step naming the model")
        if self.tune and self.train.segment_by:
            raise ValueError("'tune' with 'train.segment_by' is not supported: tune one segment's pipeline first")
        return self

    @property
    def experiment_name(self) -> str:
        """Where its runs are tracked: ``experiment``, else the pipeline's name."""
        return self.experiment or self.name

    def step_config(self, step: str) -> dict[str, Any] | None:
        """One step's settings as plain data, or None when the pipeline leaves it out."""
        value = getattr(self, "registration" if step == "register" else step)
        return None if value is None else value.model_dump(mode="json", by_alias=True)
