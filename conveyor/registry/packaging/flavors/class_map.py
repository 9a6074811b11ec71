"""What the CatBoost and XGBoost flavors share: the library writes and reads its own
model file, and loading builds the class named in the manifest from a fixed map of the
library's classes, so a class name read from a file is never imported."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from conveyor.registry.packaging.flavors.base import (
    Loaded,
    LoadRequest,
    SaveRequest,
    Stored,
    class_path,
    library_versions,
    loaded_module,
    mapped_class,
    method,
    pick_class,
    reading,
    require,
)
from conveyor.registry.packaging.manifest import Manifest


class ClassMapFlavor:
    """A flavor over one library's native file format; subclasses name the library,
    the file, the class map and the save/load arguments."""

    name: ClassVar[str]
    module: ClassVar[str]
    file: ClassVar[str]
    file_options: ClassVar[dict[str, Any]] = {}
    unsafe = False
    accepts_files = False

    def classes(self, library: Any) -> dict[str, type]:
        """The classes this flavor stores and loads, subclasses before their bases."""
        raise NotImplementedError(f"{type(self).__name__} must map its classes")

    def base_types(self, library: Any) -> tuple[type, ...]:
        """The types of model this flavor handles."""
        raise NotImplementedError(f"{type(self).__name__} must name its base types")

    def libraries(self, model: Any, library: Any) -> tuple[str, ...]:
        """The distributions whose versions the manifest records."""
        return (self.module,)

    def wrap(self, native: Any, library: Any) -> Loaded:
        """The loaded model's prediction functions."""
        return Loaded(native=native, predict=native.predict, predict_proba=method(native, "predict_proba"))

    def handles(self, model: Any) -> bool:
        """True for the library's models (only when the library is imported already)."""
        library = loaded_module(self.module)
        return library is not None and isinstance(model, self.base_types(library))

    def save(self, model: Any, folder: Path, request: SaveRequest) -> Stored:
        """Write the model in the library's own format."""
        library = require(self.module)
        options = {"class": pick_class(model, self.classes(library))}
        model.save_model(str(folder / self.file), **self.file_options)
        return Stored(
            estimator=class_path(model), libraries=library_versions(*self.libraries(model, library)), options=options
        )

    def load(self, folder: Path, manifest: Manifest, request: LoadRequest) -> Loaded:
        """Build the mapped class and read the model file into it."""
        library = require(self.module)
        native = mapped_class(manifest, self.classes(library))()
        with reading(manifest, self.module, self.file):
            native.load_model(str(folder / self.file), **self.file_options)
        return self.wrap(native, library)
