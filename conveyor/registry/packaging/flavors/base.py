"""What a flavor is: how one kind of model is written to a folder and read back.

A flavor writes the model's files in the library's own format and says what to record
in the manifest; loading gets the manifest back and returns the library object with its
predict functions. Flavors import their library lazily, so an optional library that is
not installed only matters to the models that need it.
"""

from __future__ import annotations

import importlib
import platform
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from conveyor.errors import ConveyorError, ValidationError
from conveyor.registry.packaging.kinds import json_scalars

if TYPE_CHECKING:
    from conveyor.registry.packaging.manifest import Manifest

Predict = Callable[[pd.DataFrame], Any]

# Optional libraries and the extra of conveyor-ml that installs each.
_EXTRAS = {"lightgbm": "lightgbm", "xgboost": "xgboost", "catboost": "catboost"}


@dataclass(frozen=True)
class SaveRequest:
    """What ``save_model`` was given besides the model: files for custom code."""

    artifacts: Mapping[str, Path] = field(default_factory=dict)
    code_paths: Sequence[Path] = ()


@dataclass(frozen=True)
class LoadRequest:
    """What ``load_folder`` was given: the types the caller trusts beyond Conveyor's list."""

    trusted_types: Sequence[str] = ()


@dataclass(frozen=True)
class Stored:
    """What a flavor wrote, as the manifest records it."""

    estimator: str
    libraries: dict[str, str]
    options: dict[str, Any] = field(default_factory=dict)
    untrusted_types: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Loaded:
    """A model read back: the library object and the functions that predict with it."""

    native: Any
    predict: Predict
    predict_proba: Predict | None


@runtime_checkable
class Flavor(Protocol):
    """One way of storing models.

    ``unsafe`` flavors unpickle, so loading them needs ``allow_pickle``. (The ``python``
    flavor runs its stored code too, by design: that is what a custom model is.)
    """

    name: str
    unsafe: bool
    accepts_files: bool  # takes ``artifacts`` and ``code_paths``

    def handles(self, model: Any) -> bool:
        """Whether this flavor can store ``model`` (without importing any library)."""
        ...

    def save(self, model: Any, folder: Path, request: SaveRequest) -> Stored:
        """Write the model's files into the empty ``folder``."""
        ...

    def load(self, folder: Path, manifest: Manifest, request: LoadRequest) -> Loaded:
        """Read a verified folder back."""
        ...


def require(module: str) -> Any:
    """Import an optional library, or say how to install it.

    Raises:
        ValidationError: the library is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = _EXTRAS.get(module.split(".")[0])
        how = f"pip install 'conveyor-ml[{extra}]'" if extra else f"install {module}"
        raise ValidationError(f"this model needs {module}, which is not installed; {how}", field="flavor") from exc


def loaded_module(name: str) -> Any:
    """The module if some code imported it already: a model of its types cannot exist otherwise."""
    return sys.modules.get(name)


def class_path(obj: Any) -> str:
    """``module.QualName`` of the object's class, as the manifest's ``estimator``."""
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def library_versions(*distributions: str) -> dict[str, str]:
    """Versions of Python, numpy, pandas and the given installed distributions."""
    versions = {"python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__}
    for name in distributions:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def method(obj: Any, name: str) -> Predict | None:
    """The bound method ``name`` of ``obj``, or None when the object does not offer it."""
    try:
        found = getattr(obj, name, None)
    except AttributeError:  # scikit-learn's available_if raises it for unavailable methods
        return None
    return found if callable(found) else None


def label_options(classes: Any) -> dict[str, Any]:
    """Class labels as manifest options: JSON-safe values plus the dtype to rebuild them with."""
    labels = np.asarray(classes)
    return {"classes": json_scalars(labels, "class labels", "classes"), "classes_dtype": labels.dtype.str}


def labels_array(options: Mapping[str, Any]) -> np.ndarray:
    """The class labels recorded by ``label_options``, with their original dtype.

    Raises:
        ValidationError: the recorded dtype is not a plain label dtype.
    """
    dtype = np.dtype(str(options.get("classes_dtype", "O")))
    if dtype.kind not in "biufUO":
        raise ValidationError(f"class labels cannot have dtype {dtype}", field="options.classes_dtype")
    return np.asarray(options["classes"], dtype=dtype)


def pick_class(model: Any, classes: Mapping[str, type]) -> str:
    """The name, in a flavor's fixed map, of the first class ``model`` is an instance of.

    Raises:
        ValidationError: the model is of none of them.
    """
    for name, cls in classes.items():
        if isinstance(model, cls):
            return name
    raise ValidationError(f"{class_path(model)} is not one of {', '.join(classes)}", field="model")


def mapped_class(manifest: Manifest, classes: Mapping[str, type]) -> type:
    """The class named by the manifest's ``options.class``, only ever taken from ``classes``.

    Raises:
        ValidationError: the manifest names a class outside the map.
    """
    name = manifest.options.get("class")
    if name not in classes:
        raise ValidationError(
            f"model manifest names class {name!r}; the {manifest.flavor} flavor loads only {', '.join(classes)}",
            field="options.class",
        )
    return classes[name]


@contextmanager
def reading(manifest: Manifest, library: str, path: str) -> Iterator[None]:
    """Turn a library's failure to read a verified file (version skew, mostly) into a ConveyorError."""
    try:
        yield
    except ConveyorError:
        raise
    except Exception as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        wrote = manifest.libraries.get(library, "an unknown version")
        raise ConveyorError(f"{library} could not read model file {path!r} (written with {wrote}): {first_line}") from exc
