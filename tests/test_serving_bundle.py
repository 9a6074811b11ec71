"""Serving bundles: what ``conveyor models package`` writes, the checks it keeps, and (slow)
a bundle installed into a fresh virtualenv serving the same predictions as in-process."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import httpx
import numpy as np
import pytest
from registry_support import CATEGORICAL, NUMERIC, credit_frame, log_version
from serving_support import free_port, wait_until_ready

from conveyor.core.workspace import Workspace
from conveyor.errors import IntegrityError
from conveyor.registry.packaging import MANIFEST_FILE
from conveyor.serving.bundle import load_bundle, write_bundle


@pytest.fixture
def metadata_url(tmp_path: Path) -> str:
    """SQLite only: packaging reads the registry through its service, tested on both backends."""
    return f"sqlite:///{tmp_path / 'meta' / 'conveyor.db'}"


@pytest.fixture
def registered(workspace: Workspace) -> Workspace:
    """credit-risk version 1 (a scikit-learn pipeline) as champion."""
    workspace.registry.create_registered_model("credit-risk", risk_tier="low")
    log_version(workspace, "credit-risk", credit_frame())
    workspace.registry.set_alias("credit-risk", "champion", 1)
    return workspace


def _rows(count: int = 8):  # noqa: ANN202
    return credit_frame(rows=count, seed=9)[NUMERIC + CATEGORICAL]


def test_bundle_holds_model_source_pins_and_entrypoint(registered: Workspace, tmp_path: Path) -> None:
    bundle = write_bundle(registered.registry, "credit-risk@champion", tmp_path / "bundle")
    root = bundle.path
    assert (bundle.name, bundle.version) == ("credit-risk", 1)
    assert sorted(path.name for path in (root / "model").iterdir()) == [MANIFEST_FILE, "model.skops"]
    assert (root / "app" / "conveyor" / "serving" / "bundle.py").is_file()
    assert not list(root.rglob("__pycache__"))
    for name in ("serve.py", "Dockerfile", ".dockerignore", "README.md"):
        assert (root / name).is_file(), name
    assert bundle.files == sum(1 for path in root.rglob("*") if path.is_file())
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]  # no staging folder left

    lines = (root / "requirements.txt").read_text().splitlines()
    assert "credit-risk version 1" in lines[0] and sys.version.split()[0] in lines[1]
    pins = [line for line in lines if not line.startswith("#")]
    assert pins == bundle.requirements == sorted(pins, key=lambda pin: re.split(r"[\[=]", pin)[0].lower())
    for name in ("scikit-learn", "skops", "numpy", "pandas", "starlette", "pydantic"):
        assert f"{name}=={metadata.version(name)}" in pins
    assert f"uvicorn[standard]=={metadata.version('uvicorn')}" in pins
    assert not [pin for pin in pins if pin.split("=")[0] in {"conveyor-ml", "lightgbm", "pytest", "ray", "python"}]

    info = json.loads((root / "bundle.json").read_text())
    version = registered.registry.get_model_version("credit-risk", 1)
    assert {key: info[key] for key in ("name", "version", "uri", "flavor", "manifest_sha256")} == {
        "name": "credit-risk", "version": 1, "uri": "models:/credit-risk@champion", "flavor": "sklearn",
        "manifest_sha256": version.manifest_sha256,
    }
    assert hashlib.sha256((root / "model" / MANIFEST_FILE).read_bytes()).hexdigest() == version.manifest_sha256
    assert info["conveyor_version"] == metadata.version("conveyor-ml")
    assert info["python_version"] == sys.version.split()[0]
    assert info["trusted_types"] == registered.settings.registry.trusted_types
    assert info["created_at"].endswith("+00:00")

    dockerfile = (root / "Dockerfile").read_text()
    assert f"FROM python:{sys.version_info.major}.{sys.version_info.minor}-slim" in dockerfile
    for line in ("RUN pip install --no-cache-dir -r requirements.txt", "USER conveyor", "EXPOSE 8080", "/healthz",
                 'CMD ["python", "serve.py", "--host", "0.0.0.0", "--port", "8080"]'):
        assert line in dockerfile


def test_bundle_loads_as_served_and_refuses_changed_files(registered: Workspace, tmp_path: Path) -> None:
    bundle = write_bundle(registered.registry, "credit-risk/1", tmp_path / "bundle")
    endpoint = load_bundle(bundle.path)
    rows = _rows()
    in_process = registered.registry.load_model("models:/credit-risk/1")
    assert (endpoint.name, endpoint.version, endpoint.uri) == ("credit-risk", 1, "models:/credit-risk/1")
    assert np.allclose(endpoint.predictor.predict_proba(rows), in_process.predict_proba(rows), rtol=0, atol=1e-12)

    manifest = bundle.path / "model" / MANIFEST_FILE
    manifest.write_text(manifest.read_text().replace('"sklearn"', '"pickle"'))
    with pytest.raises(IntegrityError, match="bundle.json"):
        load_bundle(bundle.path)

    cached = registered.registry.cache / registered.registry.get_model_version("credit-risk", 1).manifest_sha256
    (cached / "model.skops").write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match="model.skops"):
        write_bundle(registered.registry, "credit-risk", tmp_path / "second")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bundle", "meta", "ws"]  # nothing half-written


def test_package_through_the_cli(registered: Workspace, run_cli, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "bundle"
    packaged = run_cli(registered, "models", "package", "credit-risk@champion", "--out", str(out))
    assert packaged.returncode == 0, packaged.stderr
    files = sum(1 for path in out.rglob("*") if path.is_file())
    assert packaged.stdout.strip() == (
        f"packaged credit-risk version 1 → {out} ({files} files); run: python {out / 'serve.py'} --port 8080"
    )

    again = run_cli(registered, "models", "package", "credit-risk@champion", "--out", str(out))
    assert again.returncode == 2
    assert again.stderr.strip() == (
        f"error: output folder {str(out)!r} exists and is not empty: package into a new or empty folder"
    )
    unknown = run_cli(registered, "models", "package", "churn@champion", "--out", str(tmp_path / "other"))
    assert unknown.returncode == 3
    assert unknown.stderr.strip() == "error: registered model 'churn' does not exist"
    assert not (tmp_path / "other").exists()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_bundle_serves_from_a_fresh_virtualenv(registered: Workspace, tmp_path: Path) -> None:
    bundle = write_bundle(registered.registry, "credit-risk@champion", tmp_path / "bundle")
    venv, elsewhere = tmp_path / "venv", tmp_path / "elsewhere"
    elsewhere.mkdir()
    outer = {key: value for key, value in os.environ.items()
             if not key.startswith("CONVEYOR_") and key not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=outer, timeout=120)
    python = str(venv / "bin" / "python")
    installed = subprocess.run([python, "-m", "pip", "install", "--quiet", "-r", str(bundle.path / "requirements.txt")],
                               capture_output=True, text=True, env=outer, timeout=600)
    assert installed.returncode == 0, installed.stderr[-3000:]

    clean = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    assert subprocess.run([python, "-c", "import conveyor"], cwd=elsewhere, env=clean,
                          capture_output=True).returncode != 0  # what serves is the bundle's own copy
    port = free_port()
    process = subprocess.Popen([python, str(bundle.path / "serve.py"), "--port", str(port), "--no-log"],
                               cwd=elsewhere, env=clean, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            wait_until_ready(process, client, timeout_s=120)
            rows = _rows(20)
            answer = client.post("/v1/models/credit-risk/predict", json={"instances": rows.to_dict(orient="records")})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            model = registered.registry.load_model("models:/credit-risk@champion")
            assert np.allclose(body["probabilities"], model.predict_proba(rows), rtol=0, atol=1e-12)
            assert body["predictions"] == model.predict(rows).tolist()
            assert (body["model"], body["version"]) == ("credit-risk", 1)

            bad = {**rows.to_dict(orient="records")[0], "income": "a lot"}
            refused = client.post("/v1/models/credit-risk/predict", json={"instances": [bad]})
            assert refused.status_code == 422
            assert [error["field"] for error in refused.json()["errors"]] == ["income"]
            assert client.get("/v1/models/credit-risk").json()["uri"] == "models:/credit-risk@champion"
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert not (elsewhere / "predictions").exists()
