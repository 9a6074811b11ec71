"""The ``split`` step: which rows train, which test, and the folds tuning validates on.

Positions index the dataset's rows. Folds index the training rows, so tuning never
sees a test row. Time splits never let a fold validate on rows older than its training rows.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import (
    GroupKFold,
    KFold,
    StratifiedKFold,
    TimeSeriesSplit,
    train_test_split,
)

from conveyor.errors import ValidationError
from conveyor.pipelines.spec import Pipeline


@dataclass(frozen=True)
class Split:
    """Training and test positions, and ``(fit, validate)`` folds over the training positions."""

    train: np.ndarray
    test: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]

    def to_bytes(self) -> bytes:
        """The split as an ``.npz`` file (no pickle)."""
        buffer = io.BytesIO()
        arrays = {"train": self.train, "test": self.test}
        for i, (fit, validate) in enumerate(self.folds):
            arrays[f"fit_{i}"], arrays[f"validate_{i}"] = fit, validate
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Split:
        """Read back what ``to_bytes`` wrote."""
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            count = sum(1 for name in stored.files if name.startswith("fit_"))
            folds = [(stored[f"fit_{i}"], stored[f"validate_{i}"]) for i in range(count)]
            return cls(stored["train"], stored["test"], folds)


def _column(frame: pd.DataFrame, name: str | None, field: str) -> pd.Series:
    if name not in frame.columns:
        raise ValidationError(f"{field}: the dataset has no column {name!r}", field=field)
    return frame[name]


def _time_split(pipeline: Pipeline, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    times = pd.to_datetime(_column(frame, pipeline.split.time_column, "split.time_column"))
    order = np.argsort(times.to_numpy(), kind="stable")
    if pipeline.split.cutoff is not None:
        try:
            cutoff = pd.Timestamp(pipeline.split.cutoff)
        except ValueError as exc:
            raise ValidationError(f"split.cutoff: {pipeline.split.cutoff!r} is not a date", field="split.cutoff") from exc
        if times.dt.tz is not None and cutoff.tz is None:
            cutoff = cutoff.tz_localize(times.dt.tz)
        before = (times < cutoff).to_numpy()[order]
        boundary = int(before.sum())
    else:
        boundary = int(round(len(frame) * (1 - pipeline.split.test_size)))
    return order[:boundary], order[boundary:]


def _folds(pipeline: Pipeline, frame: pd.DataFrame, train: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    method, count, rows = pipeline.split.method, pipeline.split.folds, frame.iloc[train]
    if method == "time":
        splitter = TimeSeriesSplit(n_splits=count).split(train)
    elif method == "group":
        splitter = GroupKFold(n_splits=count).split(rows, groups=rows[pipeline.split.group_column])
    elif method == "stratified":
        splitter = StratifiedKFold(count, shuffle=True, random_state=pipeline.seed).split(rows, rows[pipeline.target])
    else:
        splitter = KFold(count, shuffle=True, random_state=pipeline.seed).split(rows)
    return [(np.asarray(fit), np.asarray(validate)) for fit, validate in splitter]


def make_split(pipeline: Pipeline, frame: pd.DataFrame) -> Split:
    """Split the dataset as the pipeline's ``split`` step says, seeded by the pipeline's seed.

    Raises:
        ValidationError: a named column is missing, or a side would have no rows.
    """
    spec = pipeline.split
    positions = np.arange(len(frame))
    if spec.method == "time":
        train, test = _time_split(pipeline, frame)
    elif spec.method == "group":
        groups = _column(frame, spec.group_column, "split.group_column")
        values = groups.unique()
        _, test_values = train_test_split(values, test_size=spec.test_size, random_state=pipeline.seed)
        is_test = groups.isin(test_values).to_numpy()
        train, test = positions[~is_test], positions[is_test]
    else:
        labels = _column(frame, pipeline.target, "target") if spec.method == "stratified" else None
        try:
            train, test = train_test_split(positions, test_size=spec.test_size, random_state=pipeline.seed, stratify=labels)
        except ValueError as exc:
            raise ValidationError(f"split: {exc}", field="split") from exc
        train, test = np.sort(train), np.sort(test)
    if len(train) == 0 or len(test) == 0:
        side = "training" if len(train) == 0 else "test"
        raise ValidationError(f"split: the {side} side has no rows (check split.cutoff or split.test_size)", field="split")
    try:
        folds = _folds(pipeline, frame, train)
    except ValueError as exc:
        raise ValidationError(f"split.folds: {exc}", field="split.folds") from exc
    return Split(np.asarray(train), np.asarray(test), folds)
