"""One model per segment (a store, a series, a region), served as one model.

``SegmentedModel`` is a ``PythonModel``: its artifact folder holds each segment's model
folder in its own safe format, and ``predict`` sends every row to its segment's model.
Segments are fitted in parallel by the pipeline's executor.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from conveyor.errors import ValidationError
from conveyor.registry.packaging import PythonModel, load_folder, save_model

ARTIFACT = "segments"


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


class SegmentedModel(PythonModel):
    """Per-segment models behind one ``predict``: rows go to the model of their ``column`` value,
    which sees every input column but that one.

    Args:
        column: the segment column; it must be among the input columns.
        segments: ``[value, folder name]`` pairs, as stored.
        trusted_types: skops types the segment models may hold (forests, boosted trees).
    """

    def __init__(self, column: str, segments: Sequence[Sequence[Any]] = (), trusted_types: Sequence[str] = ()) -> None:
        self.column = column
        self.segments = [(_plain(value), str(folder)) for value, folder in segments]
        self.trusted_types = list(trusted_types)
        self.models: dict[Any, Any] = {}

    @classmethod
    def from_fitted(cls, column: str, models: Mapping[Any, Any], trusted_types: Sequence[str] = ()) -> SegmentedModel:
        """Wrap fitted models keyed by segment value."""
        segmented = cls(column, [(value, f"segment-{i:05d}") for i, value in enumerate(models)], trusted_types)
        segmented.models = {_plain(value): model for value, model in models.items()}
        return segmented

    def get_config(self) -> dict[str, Any]:
        """The column, the segment folders and the trusted types."""
        return {"column": self.column, "segments": [list(pair) for pair in self.segments], "trusted_types": self.trusted_types}

    def save_segments(self, folder: Path) -> Path:
        """Write each segment's model folder under ``folder``; pass it as the ``segments`` artifact."""
        for value, name in self.segments:
            save_model(self.models[value], folder / name)
        return folder

    def load_artifacts(self, artifacts: Mapping[str, Path]) -> None:
        """Load every segment's model, each verified against its own manifest."""
        root = artifacts[ARTIFACT]
        self.models = {value: load_folder(root / name, trusted_types=self.trusted_types) for value, name in self.segments}

    def _dispatch(self, frame: pd.DataFrame, method: str) -> np.ndarray:
        if self.column not in frame.columns:
            raise ValidationError(f"input has no segment column {self.column!r}", field=self.column)
        keys = frame[self.column]
        unknown = sorted(set(keys.unique()) - set(self.models), key=str)
        if unknown:
            raise ValidationError(f"no model for segment {self.column}={unknown[0]!r}", field=self.column)
        features = frame.drop(columns=[self.column])
        result: np.ndarray | None = None
        for value, positions in keys.groupby(keys, sort=False).indices.items():
            output = np.asarray(getattr(self.models[value], method)(features.iloc[positions]))
            if result is None:
                result = np.empty((len(frame), *output.shape[1:]), dtype=output.dtype)
            result[positions] = output
        return result if result is not None else np.empty(0)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Each row predicted by its segment's model."""
        return self._dispatch(frame, "predict")

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Class probabilities from each row's segment model (segments must share their classes)."""
        return self._dispatch(frame, "predict_proba")


def log_segmented(run: Any, model: SegmentedModel, training_data: pd.DataFrame, target: pd.Series) -> Any:
    """Store a segmented model in ``run`` as ``model``, each segment in its own safe format."""
    with tempfile.TemporaryDirectory(prefix="conveyor-segments-") as folder:
        root = model.save_segments(Path(folder) / ARTIFACT)
        return run.log_model(model, "model", training_data=training_data, target=target, artifacts={ARTIFACT: root})
