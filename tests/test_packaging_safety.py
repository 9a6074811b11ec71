"""A model folder is loaded only if it is intact and holds nothing that runs unasked-for code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from conveyor.errors import IntegrityError, ValidationError
from conveyor.registry.packaging import (
    MANIFEST_FILE,
    load_folder,
    read_manifest,
    save_model,
)


class ClipOutliers(TransformerMixin, BaseEstimator):
    """A custom transformer: a type skops (and Conveyor) does not trust by default."""

    def __init__(self, limit: float = 2.0) -> None:
        self.limit = limit

    def fit(self, frame: pd.DataFrame, target: object = None) -> ClipOutliers:
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        return np.clip(np.asarray(frame, dtype=float), -self.limit, self.limit)


class ThresholdRule:
    """A model of no supported library: only pickle could store it."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return (frame["a"] > 0).to_numpy()


@pytest.fixture
def data() -> tuple[pd.DataFrame, np.ndarray]:
    values, labels = make_classification(120, 3, n_informative=2, n_redundant=0, random_state=0)
    return pd.DataFrame(values, columns=["a", "b", "c"]), labels


@pytest.fixture
def saved_model(tmp_path: Path, data: tuple[pd.DataFrame, np.ndarray]) -> Path:
    frame, labels = data
    folder = tmp_path / "model"
    save_model(LogisticRegression().fit(frame, labels), folder, input_example=frame.head(3))
    return folder


def test_a_modified_file_is_refused_naming_it(saved_model: Path) -> None:
    model_file = saved_model / "model.skops"
    content = bytearray(model_file.read_bytes())
    content[len(content) // 2] ^= 0x01
    model_file.write_bytes(bytes(content))

    with pytest.raises(IntegrityError, match="'model.skops' does not match its checksum") as caught:
        load_folder(saved_model)
    assert caught.value.field == "model.skops"


def test_a_deleted_file_is_refused_naming_it(saved_model: Path) -> None:
    (saved_model / "model.skops").unlink()

    with pytest.raises(IntegrityError, match="'model.skops' is missing") as caught:
        load_folder(saved_model)
    assert caught.value.field == "model.skops"


def test_a_file_the_manifest_does_not_list_is_refused(saved_model: Path) -> None:
    (saved_model / "sitecustomize.py").write_text("print('hello')\n")

    with pytest.raises(IntegrityError, match="'sitecustomize.py', which the manifest does not list"):
        load_folder(saved_model)


def test_a_manifest_pointing_outside_the_folder_is_invalid(saved_model: Path) -> None:
    manifest = json.loads((saved_model / MANIFEST_FILE).read_bytes())
    manifest["files"][0]["path"] = "../elsewhere/model.skops"

    with pytest.raises(ValidationError, match="invalid model manifest at files.0.path") as caught:
        read_manifest(json.dumps(manifest).encode())
    assert caught.value.field == "manifest"


def test_garbage_is_not_a_manifest() -> None:
    with pytest.raises(ValidationError, match="invalid model manifest") as caught:
        read_manifest(b"{not json")
    assert caught.value.field == "manifest"


def test_a_manifest_can_come_from_the_registry_instead_of_the_folder(saved_model: Path) -> None:
    manifest = read_manifest((saved_model / MANIFEST_FILE).read_bytes())
    (saved_model / MANIFEST_FILE).unlink()

    assert load_folder(saved_model, manifest=manifest).manifest == manifest


def test_a_folder_without_manifest_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="has no conveyor-model.json") as caught:
        load_folder(tmp_path)
    assert caught.value.field == "folder"


def test_saving_into_a_folder_with_files_is_refused(saved_model: Path, data: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, labels = data
    with pytest.raises(ValidationError, match="must be a new or empty folder") as caught:
        save_model(LogisticRegression().fit(frame, labels), saved_model)
    assert caught.value.field == "folder"


def test_a_model_no_flavor_handles_is_refused_without_allow_pickle(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="no safe flavor stores a .*ThresholdRule") as caught:
        save_model(ThresholdRule(), tmp_path / "model")
    assert caught.value.field == "allow_pickle"
    assert "allow_pickle=True" in caught.value.message
    assert not (tmp_path / "model").exists()


def test_naming_the_pickle_flavor_still_needs_allow_pickle(tmp_path: Path, data: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, labels = data
    with pytest.raises(ValidationError, match="needs allow_pickle=True") as caught:
        save_model(LogisticRegression().fit(frame, labels), tmp_path / "model", flavor="pickle")
    assert caught.value.field == "allow_pickle"


def test_a_pickled_model_is_marked_unsafe_and_refused_without_allow_pickle(tmp_path: Path) -> None:
    manifest = save_model(ThresholdRule(), tmp_path / "model", allow_pickle=True)
    assert (manifest.flavor, manifest.unsafe) == ("pickle", True)

    with pytest.raises(ValidationError, match="unpickling runs any code") as caught:
        load_folder(tmp_path / "model")
    assert caught.value.field == "allow_pickle"


def test_a_manifest_cannot_unlock_pickle_by_claiming_to_be_safe(tmp_path: Path) -> None:
    save_model(ThresholdRule(), tmp_path / "model", allow_pickle=True)
    manifest = read_manifest((tmp_path / "model" / MANIFEST_FILE).read_bytes())

    with pytest.raises(ValidationError) as caught:
        load_folder(tmp_path / "model", manifest=manifest.model_copy(update={"unsafe": False}))
    assert caught.value.field == "allow_pickle"


def test_a_custom_type_in_a_pipeline_is_refused_until_trusted(
    tmp_path: Path, data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    frame, labels = data
    model = Pipeline([("clip", ClipOutliers(1.5)), ("classify", LogisticRegression())]).fit(frame, labels)
    custom = f"{ClipOutliers.__module__}.ClipOutliers"
    manifest = save_model(model, tmp_path / "model")
    assert manifest.untrusted_types == [custom]

    with pytest.raises(ValidationError, match=f"types Conveyor does not trust: '{custom}'") as caught:
        load_folder(tmp_path / "model")
    assert caught.value.field == "trusted_types"
    assert f"trusted_types=['{custom}']" in caught.value.message

    loaded = load_folder(tmp_path / "model", trusted_types=[custom])
    assert np.array_equal(loaded.predict(frame), model.predict(frame))
    assert np.array_equal(loaded.predict_proba(frame), model.predict_proba(frame))


def test_tree_node_storage_is_not_trusted_by_default(tmp_path: Path, data: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, labels = data
    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(frame, labels)
    save_model(model, tmp_path / "model")

    with pytest.raises(ValidationError, match="'sklearn.tree._tree.Tree'"):
        load_folder(tmp_path / "model")
    loaded = load_folder(tmp_path / "model", trusted_types=["sklearn.tree._tree.Tree"])
    assert np.array_equal(loaded.predict_proba(frame), model.predict_proba(frame))


def test_trusted_types_in_the_manifest_are_not_trusted(tmp_path: Path, data: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, labels = data
    model = Pipeline([("clip", ClipOutliers()), ("classify", LogisticRegression())]).fit(frame, labels)
    save_model(model, tmp_path / "model")
    manifest = read_manifest((tmp_path / "model" / MANIFEST_FILE).read_bytes())

    with pytest.raises(ValidationError, match="does not trust"):
        load_folder(tmp_path / "model", manifest=manifest.model_copy(update={"untrusted_types": []}))


def test_artifacts_are_refused_for_flavors_without_code(tmp_path: Path, data: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, labels = data
    with pytest.raises(ValidationError, match="for PythonModel subclasses") as caught:
        save_model(LogisticRegression().fit(frame, labels), tmp_path / "model", artifacts={"x": tmp_path})
    assert caught.value.field == "artifacts"
