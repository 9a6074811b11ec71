"""Reading a model folder back: verify every file, then let its flavor load it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from conveyor.errors import ValidationError
from conveyor.registry.packaging.flavors import LoadRequest, get_flavor
from conveyor.registry.packaging.manifest import (
    MANIFEST_FILE,
    Manifest,
    read_manifest,
    verify_folder,
)
from conveyor.registry.packaging.predictor import Predictor
from conveyor.registry.packaging.validation import Mode


def load_folder(
    folder: Path,
    manifest: Manifest | None = None,
    allow_pickle: bool = False,
    trusted_types: Sequence[str] = (),
    schema_mode: Mode = "error",
) -> Predictor:
    """Load a model folder written by ``save_model``, after checking every file's sha256.

    Args:
        folder: the model folder.
        manifest: the manifest as the registry recorded it; read from the folder when
            omitted (then it vouches only for the files, not for itself).
        allow_pickle: permit unpickling a ``pickle`` flavor model (runs code from the file).
        trusted_types: skops types to trust beyond Conveyor's list, for ``sklearn`` models
            holding trees or custom classes from a source you trust.
        schema_mode: how ``predict`` treats frames that differ from the signature:
            ``"error"`` or ``"coerce"`` (see ``Signature.validate_frame``).

    Raises:
        ValidationError: the folder has no manifest, the flavor is unknown, pickle is not
            allowed, or the file holds untrusted types.
        IntegrityError: a file is missing, modified or not listed in the manifest.
    """
    folder = Path(folder)
    if schema_mode not in ("error", "coerce"):
        raise ValidationError(f"schema_mode must be 'error' or 'coerce', got {schema_mode!r}", field="schema_mode")
    if manifest is None:
        path = folder / MANIFEST_FILE
        if not path.is_file():
            raise ValidationError(f"{folder} is not a model folder: it has no {MANIFEST_FILE}", field="folder")
        manifest = read_manifest(path.read_bytes())
    verify_folder(folder, manifest)
    flavor = get_flavor(manifest.flavor)
    if flavor.unsafe and not allow_pickle:
        raise ValidationError(
            f"model in {folder} is pickled ({manifest.estimator}); unpickling runs any code the file contains, "
            "so pass allow_pickle=True only if you trust everyone who could have written it",
            field="allow_pickle",
        )
    loaded = flavor.load(folder, manifest, LoadRequest(trusted_types=tuple(trusted_types)))
    return Predictor(manifest, loaded, schema_mode)
