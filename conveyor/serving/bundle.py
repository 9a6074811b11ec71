"""Serving bundles: a registered version exported as a folder that serves it anywhere.

``conveyor models package NAME@ALIAS --out DIR`` writes the version's verified model folder
(``model/``), a copy of Conveyor's source (``app/conveyor/``), Conveyor's and the model's
requirements pinned to the versions installed here, ``bundle.json``, the entrypoint
``serve.py``, a Dockerfile and a README. The bundle needs no workspace, database or
artifact store: ``serve.py`` checks the manifest against the sha256 the registry recorded
and every file against the manifest, then serves the model with the routes of ``conveyor
serve``. The model is loaded from the bundle before the bundle is moved into place, so a
bundle that would not load is never written.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import conveyor
from conveyor.errors import IntegrityError, ValidationError
from conveyor.registry.loading import fetch_model
from conveyor.registry.packaging import (
    MANIFEST_FILE,
    Manifest,
    load_folder,
    read_manifest,
)
from conveyor.serving.app import create_bundle_app
from conveyor.serving.endpoint import ModelEndpoint, ModelReference

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from conveyor.registry.service import RegistryService

DISTRIBUTION = "conveyor-ml"  # the distribution that installs the ``conveyor`` package
BUNDLE_FILE = "bundle.json"
MODEL_DIR = "model"
BUNDLE_VARIABLE = "CONVEYOR_BUNDLE_DIR"  # what serve.py --workers N tells each worker
LOG_VARIABLE = "CONVEYOR_BUNDLE_LOG_DIR"
_NOT_REQUIREMENTS = {"python", DISTRIBUTION}  # manifest ``libraries`` pip does not install (Conveyor is in app/)
_SYSTEM_PACKAGES = {"lightgbm": "libgomp1"}  # shared libraries a library's wheel expects and python:slim lacks
_SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc")


@dataclass(frozen=True)
class Bundle:
    """A written serving bundle: where it is, what it serves, how many files, the pins."""

    path: Path
    name: str
    version: int
    files: int
    requirements: list[str]


def write_bundle(registry: RegistryService, model: str, out: Path) -> Bundle:
    """Write the serving bundle of ``model`` (``NAME@ALIAS``, ``NAME/VERSION`` or ``NAME``,
    its champion) into ``out``, a new or empty folder.

    The bundle is assembled in a hidden folder next to ``out`` and moved into place once
    its model loads from it, so a failure leaves nothing half-written.

    Raises:
        ValidationError: ``out`` is not a new or empty folder, the reference is malformed,
            a library the model needs is not installed here, or the model cannot be loaded
            without trusting more (a pickle, untrusted types).
        NotFound: no such model, alias or version.
        IntegrityError: a model file does not match its manifest.
    """
    reference = ModelReference.parse(model)
    out = Path(out)
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise ValidationError(f"output folder {str(out)!r} exists and is not empty: package into a new or empty folder",
                              field="out")
    version, manifest_sha = registry.resolve(reference.uri)
    assert version is not None  # a ModelReference always names a registered version
    folder, manifest = fetch_model(registry.artifacts, manifest_sha, registry.cache)
    requirements = pinned_requirements(manifest)
    info = {
        "name": reference.name, "version": version.version, "uri": reference.uri, "flavor": manifest.flavor,
        "manifest_sha256": manifest_sha, "conveyor_version": metadata.version(DISTRIBUTION),
        "python_version": platform.python_version(), "trusted_types": list(registry.settings.trusted_types),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    target = out.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        _copy_model(folder, manifest, registry.artifacts.get_bytes(manifest_sha), staging / MODEL_DIR)
        shutil.copytree(Path(conveyor.__file__).parent, staging / "app" / "conveyor", ignore=_SKIPPED)
        _write_texts(staging, info, requirements, manifest)
        load_bundle(staging)
        target.mkdir(exist_ok=True)  # an empty folder (the working directory, maybe) is filled, not replaced
        for child in staging.iterdir():
            child.rename(target / child.name)
        staging.rmdir()
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    files = sum(1 for path in out.rglob("*") if path.is_file())
    return Bundle(out, reference.name, version.version, files, requirements)


def pinned_requirements(manifest: Manifest) -> list[str]:
    """Conveyor's runtime requirements and the model's libraries, each pinned ``==`` to the
    version installed here (the one that loads the model), sorted by name. Requirements whose
    marker does not hold here are left out: those of extras and of other platforms.

    Raises:
        ValidationError: a requirement is not installed here, so no version can be pinned.
    """
    from packaging.requirements import Requirement  # writing bundles only
    from packaging.utils import canonicalize_name

    wanted: dict[str, Requirement] = {}
    for text in metadata.requires(DISTRIBUTION) or []:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate():
            wanted[canonicalize_name(requirement.name)] = requirement
    for library in manifest.libraries:
        if canonicalize_name(library) not in _NOT_REQUIREMENTS:
            wanted.setdefault(canonicalize_name(library), Requirement(library))
    pins = []
    for _, requirement in sorted(wanted.items()):
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            raise ValidationError(f"{requirement.name} is not installed here, so its version cannot be pinned: "
                                  "install it where you package the model", field="libraries") from None
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        pins.append(f"{requirement.name}{extras}=={installed}")
    return pins


def load_bundle(folder: Path) -> ModelEndpoint:
    """The model of the bundle in ``folder``, loaded for serving (``coerce`` mode, trusting the
    types the registry trusted when it was packaged).

    Raises:
        ValidationError: ``folder`` is not a serving bundle.
        IntegrityError: the manifest or a model file changed after packaging.
    """
    folder = Path(folder)
    if not (folder / BUNDLE_FILE).is_file():
        raise ValidationError(f"{folder} is not a serving bundle: it has no {BUNDLE_FILE}", field="bundle")
    info: dict[str, Any] = json.loads((folder / BUNDLE_FILE).read_text())
    model_dir = folder / MODEL_DIR
    manifest_data = (model_dir / MANIFEST_FILE).read_bytes()
    if hashlib.sha256(manifest_data).hexdigest() != info["manifest_sha256"]:
        raise IntegrityError(f"{model_dir / MANIFEST_FILE} does not match the sha256 in {BUNDLE_FILE} "
                             "(modified after packaging)", field=MANIFEST_FILE)
    predictor = load_folder(model_dir, read_manifest(manifest_data), trusted_types=info["trusted_types"],
                            schema_mode="coerce")
    return ModelEndpoint(info["name"], predictor, info["version"], info["uri"])


def bundle_app_from_environment() -> Starlette:
    """The application each uvicorn worker of ``serve.py --workers N`` builds: the bundle in
    ``CONVEYOR_BUNDLE_DIR``, predictions logged under ``CONVEYOR_BUNDLE_LOG_DIR`` if set."""
    return create_bundle_app(load_bundle(Path(os.environ[BUNDLE_VARIABLE])), os.environ.get(LOG_VARIABLE) or None)


def _copy_model(source: Path, manifest: Manifest, manifest_data: bytes, target: Path) -> None:
    """The files the manifest lists, and the manifest as the registry stored it (its sha256 is in bundle.json)."""
    for item in manifest.files:
        (target / item.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / item.path, target / item.path)
    (target / MANIFEST_FILE).write_bytes(manifest_data)


def _write_texts(root: Path, info: dict[str, Any], requirements: list[str], manifest: Manifest) -> None:
    """requirements.txt, bundle.json, serve.py, Dockerfile, .dockerignore and README.md."""
    python = ".".join(info["python_version"].split(".")[:2])
    system = sorted({_SYSTEM_PACKAGES[name] for name in manifest.libraries if name in _SYSTEM_PACKAGES})
    apt = (f"RUN apt-get update && apt-get install -y --no-install-recommends {' '.join(system)} "
           "&& rm -rf /var/lib/apt/lists/*\n") if system else ""
    header = (f"# Serving requirements of {info['name']} version {info['version']} ({info['flavor']}), pinned to the\n"
              f"# versions that loaded it when it was packaged with Conveyor {info['conveyor_version']} "
              f"on Python {info['python_version']}.\n")
    texts = {
        "requirements.txt": header + "".join(f"{pin}\n" for pin in requirements),
        BUNDLE_FILE: json.dumps(info, indent=2) + "\n",
        "serve.py": SERVE_PY,
        "Dockerfile": DOCKERFILE.format(python=python, apt=apt, **info),
        ".dockerignore": "**/__pycache__\n**/*.pyc\npredictions/\n.venv/\n",
        "README.md": README.format(python=python, image=f"{info['name'].lower()}:v{info['version']}", **info),
    }
    for name, text in texts.items():
        (root / name).write_text(text)


SERVE_PY = '''\
"""Serve this bundle's model over HTTP, with the routes of `conveyor serve`.

    python serve.py [--host 0.0.0.0] [--port 8080] [--workers 1] [--log-dir predictions | --no-log]

Written by `conveyor models package`; it needs only the packages in requirements.txt.
"""

import argparse
import os
import sys
from pathlib import Path

BUNDLE = Path(__file__).resolve().parent
sys.path.insert(0, str(BUNDLE / "app"))  # this bundle's Conveyor, whatever else is installed


def main() -> int:
    parser = argparse.ArgumentParser(description="Serve this bundle's model over HTTP.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0: every one)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=1, help="server processes, each loading the model")
    logging = parser.add_mutually_exclusive_group()
    logging.add_argument("--log-dir", default="predictions", help="where predictions are logged (folder or fsspec URL)")
    logging.add_argument("--no-log", action="store_true", help="log no predictions")
    args = parser.parse_args()
    if args.workers < 1:
        parser.error("--workers must be at least 1")

    import uvicorn

    from conveyor.errors import ConveyorError
    from conveyor.serving.app import create_bundle_app
    from conveyor.serving.bundle import BUNDLE_VARIABLE, LOG_VARIABLE, load_bundle

    log_dir = None if args.no_log else args.log_dir
    options = {"host": args.host, "port": args.port, "log_level": "warning", "access_log": False}
    if args.workers > 1:  # uvicorn starts each worker from an import string; each loads the model
        os.environ[BUNDLE_VARIABLE] = str(BUNDLE)
        os.environ[LOG_VARIABLE] = log_dir or ""
        uvicorn.run("conveyor.serving.bundle:bundle_app_from_environment", factory=True, workers=args.workers,
                    **options)
        return 0
    try:
        endpoint = load_bundle(BUNDLE)
    except ConveyorError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return error.exit_code
    uvicorn.run(create_bundle_app(endpoint, log_dir), **options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''

DOCKERFILE = """\
# {name} version {version}, packaged by Conveyor {conveyor_version}.
FROM python:{python}-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
{apt}WORKDIR /bundle
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --system --uid 10001 --no-create-home conveyor && mkdir -p predictions && chown conveyor predictions
USER conveyor
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \\
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
CMD ["python", "serve.py", "--host", "0.0.0.0", "--port", "8080"]
"""

README = """\
# {name} version {version}: serving bundle

Packaged by `conveyor models package` on {created_at} from `{uri}` ({flavor}, manifest sha256
`{manifest_sha256}`): the model files (`model/`), Conveyor {conveyor_version}'s source (`app/`), the
pinned `requirements.txt`, the entrypoint `serve.py` and a `Dockerfile`. It needs no workspace.

## With Docker

    docker build -t {image} . && docker run -p 8080:8080 {image}

## Without Docker (Python {python})

    python{python} -m venv .venv && .venv/bin/pip install -r requirements.txt
    .venv/bin/python serve.py --port 8080   # also --host 0.0.0.0, --workers N, --log-dir DIR or --no-log

## Routes

- `POST /v1/models/{name}/predict` with `{{"instances": [{{"column": value, ...}}]}}` or
  `{{"columns": [...], "data": [[...]]}}`: predictions, and for classifiers probabilities and classes;
  a row that does not fit the model's signature is a 422 naming each offending field.
- `GET /v1/models/{name}` (version, flavor, signature), `GET /v1/models`, `GET /healthz` (the process
  answers), `GET /readyz` (the model is loaded), `GET /metrics` (Prometheus), `GET /openapi.json`.

At start every model file is checked against the manifest, and the manifest against `bundle.json`.
Predictions are logged as Parquet under `--log-dir` (default `predictions/`) unless `--no-log`.
"""
