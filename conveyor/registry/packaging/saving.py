"""Writing a model folder: the flavor's files plus the manifest that lists them."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from conveyor.core.db.base import now_ms
from conveyor.errors import ValidationError
from conveyor.registry.packaging.flavors import SaveRequest, select_flavor
from conveyor.registry.packaging.manifest import (
    MANIFEST_FILE,
    Manifest,
    hash_folder,
    manifest_bytes,
)
from conveyor.registry.packaging.signature import Signature, infer_signature


def save_model(
    model: Any,
    folder: Path,
    signature: Signature | None = None,
    input_example: pd.DataFrame | None = None,
    allow_pickle: bool = False,
    flavor: str | None = None,
    artifacts: Mapping[str, str | Path] | None = None,
    code_paths: Sequence[str | Path] = (),
) -> Manifest:
    """Write ``model`` into the empty (or new) ``folder`` with its manifest, ``conveyor-model.json``.

    The flavor is chosen by what the model is (scikit-learn, LightGBM, XGBoost, CatBoost,
    ``PythonModel``); pickle only when ``allow_pickle`` and nothing safe fits, or when
    ``flavor="pickle"`` is named with ``allow_pickle``.

    Args:
        model: a fitted model.
        folder: where to write; must not exist or be empty.
        signature: the model's inputs and outputs; inferred from ``input_example`` (and the
            model, for outputs) when omitted. Prefer ``infer_signature(X_train, y_train,
            model)``: levels and nullability read off a few example rows are too narrow.
        input_example: a few rows of input, stored as JSON records; checked against
            ``signature`` when both are given.
        allow_pickle: permit the unsafe ``pickle`` flavor.
        flavor: force a flavor by name instead of detecting it.
        artifacts: for ``PythonModel``: name -> local file or folder, copied in.
        code_paths: for ``PythonModel``: the source files or packages that define it.

    Returns:
        The manifest written next to the model files.

    Raises:
        ValidationError: the folder is not empty, no allowed flavor stores the model, the
            example does not fit the signature, or the arguments do not fit the flavor.
    """
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ValidationError(f"model folder {folder} must be a new or empty folder", field="folder")
    if not callable(getattr(model, "predict", None)):
        raise ValidationError(f"a {type(model).__qualname__} has no predict method to serve", field="model")
    chosen = select_flavor(model, flavor, allow_pickle)
    if (artifacts or code_paths) and not chosen.accepts_files:
        raise ValidationError(
            f"artifacts and code_paths are for PythonModel subclasses, not the {chosen.name} flavor", field="artifacts"
        )
    signature, example = _signature_and_example(model, signature, input_example)
    request = SaveRequest(
        artifacts={name: Path(path) for name, path in (artifacts or {}).items()},
        code_paths=[Path(path) for path in code_paths],
    )
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        stored = chosen.save(model, folder, request)
        manifest = Manifest(
            flavor=chosen.name,
            estimator=stored.estimator,
            files=hash_folder(folder),
            libraries=stored.libraries,
            signature=signature,
            input_example=example,
            unsafe=chosen.unsafe,
            untrusted_types=stored.untrusted_types,
            options=stored.options,
            created_at=now_ms(),
        )
        (folder / MANIFEST_FILE).write_bytes(manifest_bytes(manifest))
    except BaseException:
        _clear(folder, remove=created)
        raise
    return manifest


def _signature_and_example(
    model: Any, signature: Signature | None, example: pd.DataFrame | None
) -> tuple[Signature | None, list[dict[str, Any]] | None]:
    if example is None:
        return signature, None
    if not isinstance(example, pd.DataFrame):
        raise ValidationError(f"input_example must be a DataFrame, got {type(example).__name__}", field="input_example")
    if signature is None:
        signature = infer_signature(example, model=model)
    else:
        signature.validate_frame(example)
    records = json.loads(example.to_json(orient="records", date_format="iso", date_unit="us"))
    return signature, records


def _clear(folder: Path, remove: bool) -> None:
    """Undo a failed save: the folder was new (remove it) or empty (empty it)."""
    if remove:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
