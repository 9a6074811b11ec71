"""Registered versions are immutable, numbered, linked to their run, and load back by
URI behind one interface; a tampered file is refused."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from registry_support import CATEGORICAL, NUMERIC, credit_frame, log_version, train

import conveyor
from conveyor.core.workspace import Workspace
from conveyor.errors import IntegrityError, NotFound, ValidationError

pytestmark = pytest.mark.both_modes


def test_versions_are_numbered_and_linked_to_their_run(workspace: Workspace) -> None:
    first = log_version(workspace, "credit-risk", credit_frame(seed=1))
    second = log_version(workspace, "credit-risk", credit_frame(seed=2))
    assert (first.version, second.version) == (1, 2)
    run = workspace.tracking.get_run(second.run_id)
    assert second.source == f"runs:/{second.run_id}/model"
    assert second.flavor == "sklearn" and not second.unsafe
    assert second.git_commit == run.info.git_commit
    assert second.profile_sha256 is not None
    model = workspace.registry.get_registered_model("credit-risk")
    assert (model.latest_version, model.risk_tier.value, model.task_type) == (2, "medium", "classification")
    assert [v.version for v in workspace.registry.list_model_versions("credit-risk")] == [2, 1]
    assert workspace.registry.get_model_version("credit-risk", "latest").version == 2
    workspace.registry.create_registered_model("churn", risk_tier="low")
    workspace.registry.set_alias("credit-risk", "champion", 1)
    listed = workspace.registry.list_registered_models()
    assert [(m.name, m.latest_version, m.aliases) for m in listed] == [
        ("churn", None, {}), ("credit-risk", 2, {"champion": 1})
    ]


def test_registered_version_pins_its_files(workspace: Workspace) -> None:
    frame = credit_frame(seed=1)
    with conveyor.start_run("pin", workspace=workspace) as run:
        run.log_model(train(frame, C=1.0), "model", training_data=frame[NUMERIC + CATEGORICAL])
        version = workspace.registry.create_model_version("credit-risk", f"runs:/{run.id}/model")
        run.log_model(train(frame, C=0.001), "model", training_data=frame[NUMERIC + CATEGORICAL])
    pinned = conveyor.load_model("models:/credit-risk/1", workspace=workspace)
    latest_in_run = conveyor.load_model(f"runs:/{run.id}/model", workspace=workspace)
    expected = train(frame, C=1.0).predict_proba(frame)
    assert (pinned.predict_proba(frame) == expected).all()
    assert not (latest_in_run.predict_proba(frame) == expected).all()
    assert workspace.registry.get_model_version("credit-risk", 1).manifest_sha256 == version.manifest_sha256


def test_load_by_alias_version_and_run_predicts_like_the_original(workspace: Workspace) -> None:
    frame = credit_frame(seed=3)
    original = train(frame)
    with conveyor.start_run("load", workspace=workspace) as run:
        logged = run.log_model(original, "model", training_data=frame[NUMERIC + CATEGORICAL], target=frame["default"],
                               registered_model_name="credit-risk")
    workspace.registry.set_alias("credit-risk", "champion", logged.version.version)
    for uri in ("models:/credit-risk@champion", "models:/credit-risk/1", "models:/credit-risk/latest", logged.uri):
        model = conveyor.load_model(uri, workspace=workspace)
        assert (model.predict(frame) == original.predict(frame[NUMERIC + CATEGORICAL])).all(), uri
        assert (model.predict_proba(frame) == original.predict_proba(frame[NUMERIC + CATEGORICAL])).all(), uri
        assert model.signature.outputs.classes == [0, 1]
        assert model.signature.outputs.name == "default"
    assert conveyor.load_model("models:/credit-risk@champion", workspace=workspace).version.version == 1


@pytest.mark.local_only  # reads the artifact store's files
def test_tampered_artifact_is_refused(workspace: Workspace) -> None:
    version = log_version(workspace, "credit-risk", credit_frame(seed=1))
    manifest = conveyor.load_model("models:/credit-risk/1", workspace=workspace).manifest
    model_file = next(f for f in manifest.files if f.path.endswith(".skops"))
    blob = workspace.settings.state_dir / "artifacts" / "blobs" / model_file.sha256[:2] / model_file.sha256
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    for cached in workspace.model_cache.rglob("*"):
        if cached.is_file():
            cached.unlink()
    with pytest.raises(IntegrityError, match=model_file.sha256[:12]):
        conveyor.load_model(f"models:/credit-risk/{version.version}", workspace=workspace)


def test_tampered_cached_file_is_refused(workspace: Workspace) -> None:
    log_version(workspace, "credit-risk", credit_frame(seed=1))
    conveyor.load_model("models:/credit-risk/1", workspace=workspace)
    cached = next(p for p in workspace.model_cache.rglob("*.skops"))
    cached.write_bytes(cached.read_bytes() + b"\0")
    with pytest.raises(IntegrityError, match=cached.name):
        conveyor.load_model("models:/credit-risk/1", workspace=workspace)


def test_bad_uris_and_missing_objects_name_the_problem(workspace: Workspace) -> None:
    log_version(workspace, "credit-risk", credit_frame(seed=1))
    for uri in ("credit-risk", "models:/credit-risk", "models:/credit-risk/0", "runs:/abc", "models:/credit-risk/champion"):
        with pytest.raises(ValidationError) as error:
            conveyor.load_model(uri, workspace=workspace)
        assert error.value.field in {"uri", "version"}, uri
    with pytest.raises(NotFound, match="no alias 'champion'"):
        conveyor.load_model("models:/credit-risk@champion", workspace=workspace)
    with pytest.raises(NotFound, match="no version 7"):
        conveyor.load_model("models:/credit-risk/7", workspace=workspace)
    with pytest.raises(NotFound, match="'fraud' does not exist"):
        conveyor.get_model_version("fraud", 1, workspace=workspace)
    with pytest.raises(NotFound, match="no artifact 'nothing/conveyor-model.json'"):
        conveyor.register_model("runs:/" + workspace.registry.get_model_version("credit-risk", 1).run_id + "/nothing",
                                "credit-risk", workspace=workspace)


def test_schema_violation_at_prediction_names_the_column(workspace: Workspace) -> None:
    log_version(workspace, "credit-risk", credit_frame(seed=1))
    model = conveyor.load_model("models:/credit-risk/1", workspace=workspace)
    frame = credit_frame(rows=20, seed=9)
    with pytest.raises(ValidationError) as missing:
        model.predict(frame.drop(columns=["income"]))
    assert missing.value.field == "income"
    unseen = frame.assign(grade="Z")
    with pytest.raises(ValidationError, match="'Z'") as error:
        model.predict(unseen)
    assert error.value.field == "grade"
    wrong = frame.assign(age=frame["age"].astype(str))
    with pytest.raises(ValidationError) as typed:
        model.predict(wrong)
    assert typed.value.field == "age"
    coerced = conveyor.load_model("models:/credit-risk/1", schema_mode="coerce", workspace=workspace)
    as_float = frame.assign(age=frame["age"].astype(float))
    assert (coerced.predict_proba(as_float) == model.predict_proba(frame)).all()


def test_duplicate_model_name_conflicts(workspace: Workspace) -> None:
    conveyor.create_registered_model("credit-risk", risk_tier="high", workspace=workspace)
    with pytest.raises(conveyor.Conflict, match="exists already"):
        conveyor.create_registered_model("credit-risk", workspace=workspace)
    with pytest.raises(ValidationError) as tier:
        conveyor.create_registered_model("fraud", risk_tier="extreme", workspace=workspace)
    assert tier.value.field == "risk_tier"
    with pytest.raises(ValidationError) as bad:
        conveyor.create_registered_model("bad name!", workspace=workspace)
    assert bad.value.field == "name"


@pytest.mark.local_only  # needs workspace settings a server decides
def test_tree_models_load_by_workspace_trust_and_strict_workspaces_refuse(workspace: Workspace) -> None:
    from registry_support import as_user
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    frame = credit_frame(seed=4)
    features = frame[["income", "debt_ratio", "age"]]
    for name, model in (("forest", RandomForestClassifier(n_estimators=5, random_state=0)),
                        ("boosting", HistGradientBoostingClassifier(max_iter=5))):
        model.fit(features, frame["default"])
        with conveyor.start_run("trees", workspace=workspace) as run:
            run.log_model(model, "model", training_data=features, registered_model_name=name)
        loaded = conveyor.load_model(f"models:/{name}/1", workspace=workspace)
        assert (loaded.predict_proba(features) == model.predict_proba(features)).all()
    strict = as_user(workspace, "sec", registry={"trusted_types": []})
    with pytest.raises(ValidationError, match="sklearn.tree._tree.Tree"):
        strict.registry.load_model("models:/forest/1")
    strict.close()


class _Doubler:
    """A model no safe flavor handles."""

    def predict(self, frame):
        return frame["income"].to_numpy() * 2


def test_pickled_version_is_marked_unsafe_and_needs_the_opt_in_to_load(workspace: Workspace) -> None:
    frame = credit_frame(rows=50, seed=5)[["income"]]
    with conveyor.start_run("unsafe", workspace=workspace) as run:
        with pytest.raises(ValidationError) as refused:
            run.log_model(_Doubler(), "model", training_data=frame)
        assert refused.value.field == "allow_pickle"
        logged = run.log_model(_Doubler(), "model", training_data=frame, allow_pickle=True, registered_model_name="odd")
    assert (logged.version.flavor, logged.version.unsafe) == ("pickle", True)
    with pytest.raises(ValidationError, match="pickle") as error:
        conveyor.load_model("models:/odd/1", workspace=workspace)
    assert error.value.field == "allow_pickle"
    loaded = conveyor.load_model("models:/odd/1", allow_pickle=True, workspace=workspace)
    assert (loaded.predict(frame) == frame["income"].to_numpy() * 2).all()


def test_loads_racing_on_a_fresh_cache_all_succeed(workspace: Workspace) -> None:
    """Server workers start together and fetch the same model at once: none may see
    another's half-downloaded file."""
    from concurrent.futures import ThreadPoolExecutor

    workspace.registry.create_registered_model("race", risk_tier="low")
    log_version(workspace, "race", credit_frame())
    for attempt in range(3):
        shutil.rmtree(workspace.model_cache, ignore_errors=True)
        with ThreadPoolExecutor(6) as pool:
            loaded = list(pool.map(lambda _: workspace.registry.load_model("models:/race/1"), range(6)))
        rows = credit_frame(rows=5, seed=2)[NUMERIC + CATEGORICAL]
        expected = loaded[0].predict_proba(rows)
        assert all(np.array_equal(p.predict_proba(rows), expected) for p in loaded), attempt
        manifest = workspace.registry.get_model_version("race", 1).manifest_sha256
        assert sorted(p.name for p in workspace.model_cache.iterdir()) == [".incoming", manifest]
