"""The fast path for numeric models: JSON values straight into the array the model reads.

Most of a one-row request's time in a general server goes to building a DataFrame and
letting pandas and the library check it column by column. For a model whose inputs are
all numeric, the signature check is a type test per value in plain Python and the
model is called on a float array. The path is enabled per model only after a probe at
load time shows that the model gives the same answers on an array as on the checked
DataFrame (a pipeline that selects columns by name does not, and keeps the general
path). Any value the fast path is unsure of (a missing column, text, a null where none
is allowed) sends the request down the general path, which names every problem.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from conveyor.serving.payload import Payload

if TYPE_CHECKING:
    from conveyor.registry.packaging import Predictor

_NUMERIC = ("float", "integer", "boolean")
_PROBE_ROWS = 4
# sklearn warns on every call that an array has no column names; the names were checked.
warnings.filterwarnings("ignore", message="X does not have valid feature names")


def _float(value: Any) -> bool:
    return type(value) is float or type(value) is int or type(value) is bool


def _integer(value: Any) -> bool:
    return type(value) is int or type(value) is bool or (type(value) is float and value.is_integer())


def _boolean(value: Any) -> bool:
    return type(value) is bool


_ACCEPTS = {"float": _float, "integer": _integer, "boolean": _boolean}


def _probe_frame(predictor: Predictor) -> pd.DataFrame:
    """A few rows with every input's own dtype and varied values."""
    columns = {}
    for position, spec in enumerate(predictor.signature.inputs):
        values = [(row * 7 + position) % 5 - 1.5 for row in range(_PROBE_ROWS)]
        if spec.type == "integer":
            values = [int(v + 1.5) for v in values]
        elif spec.type == "boolean":
            values = [v > 0 for v in values]
        columns[spec.name] = pd.Series(values, dtype=spec.dtype)
    return pd.DataFrame(columns)


class RowEncoder:
    """Checks a request's values against an all-numeric signature and returns the float array."""

    def __init__(self, predictor: Predictor, probabilities: bool) -> None:
        inputs = predictor.signature.inputs
        self.predictor = predictor
        self.probabilities = probabilities
        self.names = [spec.name for spec in inputs]
        self.checks = [_ACCEPTS[spec.type] for spec in inputs]
        self.nullable = [spec.nullable and spec.type == "float" for spec in inputs]

    @classmethod
    def probe(cls, predictor: Predictor, probabilities: bool) -> RowEncoder | None:
        """An encoder for ``predictor`` if it reads only numbers and answers an array as it
        answers the checked DataFrame; None otherwise (the general path serves it)."""
        signature = predictor.signature
        if signature is None or not signature.inputs or any(s.type not in _NUMERIC for s in signature.inputs):
            return None
        encoder = cls(predictor, probabilities)
        frame = _probe_frame(predictor)
        try:
            expected = predictor.predict_proba(frame) if probabilities else predictor.predict(frame)
            got = predictor.predict_checked(frame.to_numpy(dtype=np.float64), probabilities)
        except Exception:  # noqa: BLE001 - a model that cannot take an array keeps the general path
            return None
        if got.shape != expected.shape:
            return None
        same = np.allclose(got, expected, rtol=1e-9, atol=1e-12) if probabilities else bool((got == expected).all())
        return encoder if same else None

    def encode(self, payload: Payload) -> np.ndarray | None:
        """The rows as the model's float array, or None when the general path must decide."""
        rows = payload.value_rows(self.names)
        if rows is None:
            return None
        for row in rows:
            for value, accepts, nullable in zip(row, self.checks, self.nullable):
                if not accepts(value) and not (value is None and nullable):
                    return None
        return np.array(rows, dtype=np.float64)

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """The model's answer (probabilities for classifiers) on encoded rows."""
        return self.predictor.predict_checked(rows, self.probabilities)

