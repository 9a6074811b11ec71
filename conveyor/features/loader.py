"""Finding the definitions a workspace declares: every ``*.py`` file of its ``features/``
folder, or one importable module named by ``features.module``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType

from conveyor.core.config import Settings
from conveyor.errors import ValidationError
from conveyor.features.definitions import Definition, Entity, FeatureView


def _import_file(path: Path, root: Path) -> ModuleType:
    name = "conveyor_definitions." + ".".join(path.relative_to(root).with_suffix("").parts)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _failure(error: BaseException, where: str) -> ValidationError:
    if isinstance(error, ValidationError):
        return ValidationError(f"{where}: {error.message}", field=error.field)
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not f.filename.startswith(str(Path(__file__).parent))]
    line = f" line {frames[-1].lineno}" if frames else ""
    return ValidationError(f"{where}{line}: {type(error).__name__}: {error}", field="features")


def _modules(settings: Settings) -> list[tuple[str, ModuleType]]:
    root = settings.workspace
    if settings.features.module:
        sys.path.insert(0, str(root))
        try:
            return [(settings.features.module, importlib.import_module(settings.features.module))]
        except Exception as error:  # noqa: BLE001  user code may raise anything; report it as one line
            raise _failure(error, f"features module {settings.features.module!r}") from error
        finally:
            sys.path.remove(str(root))
    folder = root / settings.features.path
    if not folder.is_dir():
        raise ValidationError(f"no feature definitions: folder {folder} does not exist", field="features.path")
    loaded = []
    for path in sorted(folder.rglob("*.py")):
        try:
            loaded.append((str(path.relative_to(root)), _import_file(path, folder)))
        except Exception as error:  # noqa: BLE001  user code may raise anything; report it as one line
            raise _failure(error, str(path.relative_to(root))) from error
    return loaded


def load_definitions(settings: Settings) -> list[Definition]:
    """Every entity, feature view and feature service the workspace declares, once each.

    Raises:
        ValidationError: a definition file fails to import, or two different objects share a kind and name.
    """
    found: dict[tuple[str, str], tuple[Definition, str]] = {}

    def add(obj: Definition, where: str) -> None:
        key = (obj.kind, obj.name)
        if key in found and found[key][0] != obj:
            raise ValidationError(f"{obj.label} is defined twice ({found[key][1]} and {where})", field=f"{obj.kind}.name")
        found.setdefault(key, (obj, where))

    for where, module in _modules(settings):
        for value in vars(module).values():
            if isinstance(value, Definition):
                add(value, where)
                if isinstance(value, FeatureView):
                    for entity in value.entities:
                        if isinstance(entity, Entity):
                            add(entity, where)
    return [obj for obj, _ in found.values()]
