"""The BentoML side of ``bench/serving.py``: two services, written as BentoML's documentation
writes them; imported by ``bentoml serve`` in the ``bench/.venvs/bentoml`` virtualenv.

- ``DataFrameClassifier``: ``POST /predict`` with ``{"df": [{"f0": ..., ...}]}`` (a pandas
  DataFrame, records orient), answering the class probabilities;
- ``NumpyClassifier``: ``POST /predict`` with ``{"input": [[...30 floats...]]}``, an API
  with ``batchable=True``, so BentoML's adaptive batching groups concurrent requests.

The fitted model is the joblib file named by ``BENCH_MODEL`` (the same file every tool
is given), loaded once per worker.
"""

from __future__ import annotations

import os
import warnings

import bentoml
import joblib
import numpy as np
import pandas as pd

# The models were fitted on named columns; a NumPy batch has none, which scikit-learn
# would warn about on every call.
warnings.filterwarnings("ignore", message="X does not have valid feature names")


@bentoml.service(workers=1)
class DataFrameClassifier:
    """Class probabilities for the rows of a DataFrame."""

    def __init__(self) -> None:
        self.model = joblib.load(os.environ["BENCH_MODEL"])

    @bentoml.api
    def predict(self, df: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(df)


@bentoml.service(workers=1)
class NumpyClassifier:
    """Class probabilities for the rows of an array, with adaptive batching."""

    def __init__(self) -> None:
        self.model = joblib.load(os.environ["BENCH_MODEL"])

    @bentoml.api(batchable=True)
    def predict(self, input: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(input)
