"""Logging a model into a run, and fetching a version's files to load it.

Model files live in the content-addressed artifact store; the manifest lists each
file's sha256. Loading downloads into a per-manifest cache folder and the packaging
layer verifies every file against the manifest before anything is deserialised.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from conveyor.errors import ValidationError
from conveyor.registry.packaging import (
    MANIFEST_FILE,
    Manifest,
    Predictor,
    Signature,
    infer_signature,
    load_folder,
    read_manifest,
    save_model,
)
from conveyor.registry.schemas import LoggedModel, ModelVersion

PROFILE_FILE = "reference-profile.json"

if TYPE_CHECKING:
    from conveyor.core.artifacts import BlobReader
    from conveyor.registry.service import RegistryService
    from conveyor.tracking import TrackingService


def log_model(
    tracking: TrackingService,
    run_id: str,
    model: Any,
    name: str,
    signature: Signature | None = None,
    input_example: pd.DataFrame | None = None,
    training_data: pd.DataFrame | None = None,
    target: pd.Series | None = None,
    allow_pickle: bool = False,
    flavor: str | None = None,
    artifacts: Mapping[str, str | Path] | None = None,
    code_paths: Sequence[str | Path] = (),
) -> Manifest:
    """Package ``model`` and store its files and manifest as artifacts ``NAME/...`` of the run.

    With ``training_data`` (the features the model was fitted on) the signature is
    inferred from it (and ``target``), and its profile is kept as the reference for
    population stability in validation, and with the model's outputs on it, for monitoring.
    """
    tracking.get_run_info(run_id)
    if training_data is not None:
        if not isinstance(training_data, pd.DataFrame):
            raise ValidationError(f"training_data must be a DataFrame, got {type(training_data).__name__}", field="training_data")
        if signature is None:
            signature = infer_signature(training_data, target, model=model)
    with tempfile.TemporaryDirectory(prefix="conveyor-model-") as folder:
        root = Path(folder)
        manifest = save_model(
            model, root, signature=signature, input_example=input_example, allow_pickle=allow_pickle,
            flavor=flavor, artifacts=artifacts, code_paths=code_paths,
        )
        for item in manifest.files:
            tracking.log_bytes(run_id, (root / item.path).read_bytes(), f"{name}/{item.path}", "model")
        if training_data is not None:
            from conveyor.governance.validation import DataProfile
            from conveyor.monitoring.reference import REFERENCE_FILE, build_reference

            profile = DataProfile.from_frame(training_data).model_dump_json().encode()
            tracking.log_bytes(run_id, profile, f"{name}/{PROFILE_FILE}", "model")
            reference = build_reference(training_data, model).to_bytes()
            tracking.log_bytes(run_id, reference, f"{name}/{REFERENCE_FILE}", "model")
        tracking.log_bytes(run_id, (root / MANIFEST_FILE).read_bytes(), f"{name}/{MANIFEST_FILE}", "model")
    return manifest


def log_and_register(
    tracking: TrackingService, registry: RegistryService | None, run_id: str, model: Any, name: str,
    registered_model_name: str | None = None, **options: Any,
) -> LoggedModel:
    """``log_model`` into the run, then register it as the next version of
    ``registered_model_name`` if given."""
    if registered_model_name and registry is None:
        raise ValidationError("this run has no registry to register in: use conveyor.register_model", field="registered_model_name")
    manifest = log_model(tracking, run_id, model, name, **options)
    uri = f"runs:/{run_id}/{name}"
    version = registry.create_model_version(registered_model_name, uri) if registry and registered_model_name else None
    return LoggedModel(uri=uri, manifest=manifest, version=version)


INCOMING = ".incoming"  # downloads in progress, beside (not inside) the model folders


def fetch_model(artifacts: BlobReader, manifest_sha256: str, cache: Path) -> tuple[Path, Manifest]:
    """The model's files in a local folder (downloaded once per manifest) and its manifest.

    Files are downloaded outside the model folder and moved in whole, so processes loading
    the same model at once (server workers starting together) never see a partial file."""
    data = artifacts.get_bytes(manifest_sha256)
    manifest = read_manifest(data)
    folder = cache / manifest_sha256
    for item in manifest.files:
        target = folder / item.path
        if not target.exists():
            incoming = artifacts.download(item.sha256, cache / INCOMING / uuid.uuid4().hex)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(incoming, target)
    return folder, manifest



def load_resolved(
    artifacts: BlobReader, cache: Path, uri: str, version: ModelVersion | None, manifest_sha256: str,
    allow_pickle: bool, trusted_types: Sequence[str], schema_mode: Literal["error", "coerce"],
) -> Predictor:
    """The predictor of a resolved model URI: files fetched (once) into ``cache`` and verified."""
    folder, manifest = fetch_model(artifacts, manifest_sha256, cache)
    predictor = load_folder(folder, manifest, allow_pickle=allow_pickle, trusted_types=trusted_types, schema_mode=schema_mode)
    predictor.version = version
    predictor.uri = uri
    return predictor
