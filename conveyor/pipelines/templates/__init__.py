"""Starter pipelines on real data, written by ``conveyor pipeline init --template NAME``.

Each template is a ``NAME.yaml`` file shipped in this package plus the Parquet files
it trains on, built from a public dataset by ``data.py``. ``write_template`` puts
both into a folder so the pipeline runs as soon as it is written.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from conveyor.errors import Conflict, ValidationError
from conveyor.pipelines.templates.data import WRITERS

TEMPLATES: dict[str, str] = {
    "credit-scoring": "Binary default prediction on Lending Club loans with LightGBM, tuned and gated on ROC AUC.",
    "forecasting": "One Ridge model per series on 148 monthly US employment series, from SQL lag features.",
    "anomaly": "Isolation Forest on NASA Shuttle sensor readings, judged by precision among the top 500 scores.",
    "recommendation": "LightGBM ranking of MovieLens ratings from point-in-time user and movie features.",
    "text-classification": "TF-IDF and logistic regression telling great food reviews from the rest.",
}


def write_template(name: str, directory: Path, *, force: bool = False) -> list[Path]:
    """Write ``directory/pipeline.yaml`` and the data under ``directory/data/``; return the paths written.

    An existing ``pipeline.yaml`` is kept (``Conflict``) unless ``force``, so a second
    ``init`` never overwrites a pipeline the user has edited.
    """
    if name not in TEMPLATES:
        raise ValidationError(f"unknown template {name!r}; choose one of: {', '.join(TEMPLATES)}", field="template")
    directory = Path(directory)
    pipeline_path = directory / "pipeline.yaml"
    if pipeline_path.exists() and not force:
        raise Conflict(f"{pipeline_path} exists already; pass force=True (--force) to overwrite it", field="dir")
    text = resources.files(__package__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    data_paths = WRITERS[name](directory / "data")
    pipeline_path.write_text(text, encoding="utf-8")
    return [pipeline_path, *data_paths]
