"""The manifest of a model folder, and the checksums that tie the folder to it.

``conveyor-model.json`` names the flavor that reads the folder and the sha256 of every
other file in it. Loading checks those first, so a model whose files changed after it
was saved (a flipped byte, a swapped or an extra file) is refused before any library
reads it. The manifest itself is not hashed: whoever hands it to ``load_folder`` (the
registry, from its own records) vouches for it.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

import pydantic
from pydantic import BaseModel, Field, field_validator

from conveyor.core.artifacts import sha256_file
from conveyor.errors import IntegrityError, ValidationError
from conveyor.registry.packaging.signature import Signature

MANIFEST_FILE = "conveyor-model.json"
FORMAT_VERSION = 1


class ModelFile(BaseModel):
    """One file of a model folder: its path relative to the folder, checksum and size."""

    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)

    @field_validator("path")
    @classmethod
    def _path_inside_folder(cls, path: str) -> str:
        return relative_path(path)


class Manifest(BaseModel):
    """Everything needed to load a model folder safely and to know what it holds."""

    format_version: int = FORMAT_VERSION
    flavor: str
    estimator: str
    files: list[ModelFile]
    libraries: dict[str, str]
    signature: Signature | None
    input_example: list[dict[str, Any]] | None
    unsafe: bool
    untrusted_types: list[str] = []
    options: dict[str, Any] = {}
    created_at: int


def relative_path(path: str) -> str:
    """``path`` if it is a plain relative POSIX path that stays inside its folder.

    Raises:
        ValueError: the path is absolute, climbs out with ``..`` or names the manifest.
    """
    clean = PurePosixPath(path)
    if clean.is_absolute() or ".." in clean.parts or "\\" in path or str(clean) in (".", "", MANIFEST_FILE):
        raise ValueError(f"file path {path!r} must be relative, inside the folder and not the manifest")
    return str(clean)


def read_manifest(data: bytes | str) -> Manifest:
    """Parse and check a manifest.

    Raises:
        ValidationError: the data is not JSON, misses a field, has a bad value or was
            written by a newer format version.
    """
    try:
        manifest = Manifest.model_validate_json(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "manifest"
        raise ValidationError(f"invalid model manifest at {where}: {first['msg']}", field="manifest") from exc
    if manifest.format_version > FORMAT_VERSION:
        raise ValidationError(
            f"model manifest has format version {manifest.format_version}; this Conveyor reads up to {FORMAT_VERSION}",
            field="format_version",
        )
    return manifest


def manifest_bytes(manifest: Manifest) -> bytes:
    """The manifest as the JSON stored next to the model files."""
    return json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=True).encode()


def hash_folder(folder: Path) -> list[ModelFile]:
    """Checksum every file under ``folder`` except the manifest, sorted by path."""
    files = []
    for path in _file_paths(folder):
        sha, size = sha256_file(folder / path)
        files.append(ModelFile(path=path, sha256=sha, size=size))
    return files


def verify_folder(folder: Path, manifest: Manifest) -> None:
    """Check that ``folder`` holds exactly the manifest's files, byte for byte.

    Raises:
        IntegrityError: a file is missing, differs from its checksum, or is not in the
            manifest; the message names it.
    """
    listed = {entry.path for entry in manifest.files}
    for entry in manifest.files:
        path = folder / entry.path
        if not path.is_file():
            raise IntegrityError(f"model file {entry.path!r} is missing from {folder}", field=entry.path)
        sha, size = sha256_file(path)
        if sha != entry.sha256 or size != entry.size:
            raise IntegrityError(
                f"model file {entry.path!r} does not match its checksum in the manifest (modified after saving)",
                field=entry.path,
            )
    extra = [path for path in _file_paths(folder) if path not in listed]
    if extra:
        raise IntegrityError(f"model folder {folder} holds file {extra[0]!r}, which the manifest does not list", field=extra[0])


def _file_paths(folder: Path) -> list[str]:
    paths = (path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())
    return sorted(path for path in paths if path != MANIFEST_FILE)
