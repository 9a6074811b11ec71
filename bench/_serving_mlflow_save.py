"""The MLflow side of ``bench/serving.py``: saves the models as MLflow models; runs in the
``bench/.venvs/mlflow-serve`` virtualenv.

Usage: ``python _serving_mlflow_save.py '{"models": {"sklearn": "x.joblib", ...},
"example": "example.parquet", "out": "folder"}'``. Each model (the same joblib file every
tool is given) is saved with ``mlflow.sklearn.save_model`` or ``mlflow.lightgbm.save_model``
into ``out/<key>``, with an input example (MLflow infers the signature from it and
enforces it when serving); the scikit-learn pipeline answers probabilities
(``pyfunc_predict_fn="predict_proba"``), MLflow's LightGBM flavor the labels (it has no
such option). Prints ``{"result": {"version": ...}}``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import joblib
import mlflow
import pandas as pd


def main() -> None:
    """Save every model named in the JSON argument."""
    args = json.loads(sys.argv[1])
    example = pd.read_parquet(args["example"])
    for key, path in args["models"].items():
        model = joblib.load(path)
        target = str(Path(args["out"]) / key)
        if key == "lightgbm":
            mlflow.lightgbm.save_model(model, target, input_example=example,
                                       skops_trusted_types=[f"{type(model).__module__}.{type(model).__name__}"])
        else:
            mlflow.sklearn.save_model(model, target, input_example=example, pyfunc_predict_fn="predict_proba")
    print(json.dumps({"result": {"version": mlflow.__version__}}), flush=True)


if __name__ == "__main__":
    main()
