"""The ``python`` flavor: a ``PythonModel`` subclass, stored as source code plus config.

The folder holds ``code/`` (copies of ``code_paths``) and ``artifacts/<name>/...``;
the manifest options hold the class as ``module:QualName``, the ``get_config()``
keyword arguments and the artifact paths. Loading puts the stored ``code/`` folder
first on ``sys.path``, imports the class, builds ``cls(**config)`` and hands it its
artifacts.

Loading RUNS THE STORED CODE, with the rights of the loading process: it is as
powerful as unpickling. The checksums only prove the code is what was saved, not that
whoever saved it is benign; load python models only from sources you trust.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from conveyor.errors import ConveyorError, ValidationError
from conveyor.registry.packaging.flavors.base import (
    Loaded,
    LoadRequest,
    SaveRequest,
    Stored,
    library_versions,
    method,
)
from conveyor.registry.packaging.manifest import Manifest, relative_path
from conveyor.registry.packaging.python_model import PythonModel

CODE = "code"
ARTIFACTS = "artifacts"
_ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc")


class PythonFlavor:
    """Custom models: subclasses of ``PythonModel``."""

    name = "python"
    unsafe = False
    accepts_files = True

    def handles(self, model: Any) -> bool:
        """True for instances of ``PythonModel`` subclasses."""
        return isinstance(model, PythonModel)

    def save(self, model: Any, folder: Path, request: SaveRequest) -> Stored:
        """Copy the code and artifacts into the folder; record class, config and artifact paths."""
        reference = _class_reference(model)
        config = _config(model)
        _copy_code(request.code_paths, folder / CODE)
        artifacts = {name: _copy_artifact(name, Path(source), folder) for name, source in request.artifacts.items()}
        return Stored(
            estimator=reference.replace(":", "."),
            libraries=library_versions("conveyor-ml"),
            options={"python_class": reference, "config": config, "artifacts": artifacts},
        )

    def load(self, folder: Path, manifest: Manifest, request: LoadRequest) -> Loaded:
        """Import the class from the stored code, rebuild it and give it its artifacts."""
        cls = _import_class(folder / CODE, str(manifest.options.get("python_class", "")))
        config = manifest.options.get("config", {})
        artifacts = _artifact_paths(folder, manifest.options.get("artifacts", {}))
        try:
            model = cls(**config)
            model.load_artifacts(artifacts)
        except Exception as exc:
            raise ConveyorError(
                f"python model {cls.__qualname__} could not be rebuilt from its config and artifacts: {exc}"
            ) from exc
        return Loaded(native=model, predict=model.predict, predict_proba=method(model, "predict_proba"))


def _class_reference(model: PythonModel) -> str:
    cls = type(model)
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        raise ValidationError(
            f"python model class {cls.__qualname__} must be defined at the top level of a module file "
            "(passed in code_paths), not in __main__ or inside a function",
            field="model",
        )
    return f"{cls.__module__}:{cls.__qualname__}"


def _config(model: PythonModel) -> dict[str, Any]:
    config = model.get_config()
    if not isinstance(config, dict):
        raise ValidationError(f"get_config() must return a dict, got {type(config).__name__}", field="model")
    try:
        return json.loads(json.dumps(config))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"get_config() must return JSON-serialisable values: {exc}", field="model") from exc


def _copy_code(paths: Sequence[Path], target: Path) -> None:
    for source in map(Path, paths):
        if not source.exists():
            raise ValidationError(f"code path {str(source)!r} does not exist", field="code_paths")
        destination = target / source.name
        if destination.exists():
            raise ValidationError(f"two code paths are named {source.name!r}", field="code_paths")
        target.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, destination, ignore=_SKIPPED)
        else:
            shutil.copyfile(source, destination)


def _copy_artifact(name: str, source: Path, folder: Path) -> str:
    if not _ARTIFACT_NAME.match(name):
        raise ValidationError(
            f"artifact name {name!r} must be letters, digits, '_', '-' or '.', not starting with '.' or '-'",
            field="artifacts",
        )
    if not source.exists():
        raise ValidationError(f"artifact {name!r}: {str(source)!r} does not exist", field="artifacts")
    destination = folder / ARTIFACTS / name / source.name
    destination.parent.mkdir(parents=True)
    if source.is_dir():
        shutil.copytree(source, destination, ignore=_SKIPPED)
    else:
        shutil.copyfile(source, destination)
    return destination.relative_to(folder).as_posix()


def _artifact_paths(folder: Path, stored: Mapping[str, str]) -> dict[str, Path]:
    try:
        return {name: folder / relative_path(path) for name, path in stored.items()}
    except ValueError as exc:
        raise ValidationError(f"model manifest has a bad artifact path: {exc}", field="options.artifacts") from exc


def _import_class(code: Path, reference: str) -> type[PythonModel]:
    module_name, _, qualname = reference.partition(":")
    if not module_name or not qualname:
        raise ValidationError(f"model manifest names python class {reference!r}, not module:QualName", field="options")
    if code.is_dir():
        _put_first_on_path(code, module_name)
    writes_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # a __pycache__ in the folder would fail its next integrity check
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise ValidationError(f"cannot import python model class {reference!r}: {exc}", field="code_paths") from exc
    finally:
        sys.dont_write_bytecode = writes_bytecode
    if not (isinstance(found, type) and issubclass(found, PythonModel)):
        raise ValidationError(f"{reference!r} is not a PythonModel subclass", field="options")
    return found


def _put_first_on_path(code: Path, module_name: str) -> None:
    """Make ``import module_name`` find the stored code, not a module of that name imported before."""
    top = module_name.split(".")[0]
    location = code.resolve()
    if (code / f"{top}.py").is_file() or (code / top).is_dir():
        for name in [name for name in sys.modules if name == top or name.startswith(f"{top}.")]:
            origin = getattr(sys.modules[name], "__file__", None)
            if origin is None or not Path(origin).resolve().is_relative_to(location):
                del sys.modules[name]
    if str(location) in sys.path:
        sys.path.remove(str(location))
    sys.path.insert(0, str(location))
    importlib.invalidate_caches()


FLAVOR = PythonFlavor()
