"""A pipeline file is checked before anything runs; errors name the line and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pipeline_support import document

from conveyor.errors import ValidationError
from conveyor.pipelines.loading import load_pipeline, parse_pipeline
from conveyor.pipelines.spec import Pipeline


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    return path


def test_unknown_key_is_named_with_its_line(tmp_path: Path) -> None:
    text = yaml.safe_dump(document(), sort_keys=False).replace("  estimator:", "  estimater: x\n  estimator:")
    path = _write(tmp_path, text)
    line = text.splitlines().index("  estimater: x") + 1
    with pytest.raises(ValidationError) as caught:
        load_pipeline(path)
    assert caught.value.message == f"{path} line {line}, key train.estimater: unknown key"
    assert caught.value.field == "train.estimater"


def test_wrong_value_names_the_nested_key_and_line(tmp_path: Path) -> None:
    text = yaml.safe_dump(document(), sort_keys=False).replace("n_trials: 6", "n_trials: -1")
    path = _write(tmp_path, text)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "n_trials: -1" in row)
    with pytest.raises(ValidationError, match=rf"line {line}, key tune.n_trials: Input should be greater than or equal to 1"):
        load_pipeline(path)


def test_a_time_split_without_its_column_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, yaml.safe_dump(document(split={"method": "time"})))
    with pytest.raises(ValidationError, match="key split: method 'time' needs 'time_column'"):
        load_pipeline(path)


def test_broken_yaml_gives_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\ntrain: [unclosed\n")
    with pytest.raises(ValidationError, match=rf"{path} line \d+: not valid YAML"):
        load_pipeline(path)


def test_overrides_set_nested_values_parsed_as_yaml(tmp_path: Path) -> None:
    path = _write(tmp_path, yaml.safe_dump(document()))
    pipeline = load_pipeline(path, ["train.params.max_iter=50", "train.params.class_weight=balanced", "seed=9"])
    assert pipeline.train.params == {"max_iter": 50, "class_weight": "balanced"}
    assert pipeline.seed == 9


def test_override_without_equals_is_refused() -> None:
    with pytest.raises(ValidationError, match="expected KEY=VALUE"):
        parse_pipeline(document(), ["train.params.max_iter"])


def test_yaml_and_python_object_are_the_same_pipeline(tmp_path: Path) -> None:
    path = _write(tmp_path, yaml.safe_dump(document()))
    assert load_pipeline(path) == Pipeline.model_validate(document())
    assert load_pipeline(path).registration.model == "cancer"


def test_beat_champion_needs_a_model_to_register() -> None:
    with pytest.raises(ValidationError, match="'gate.beat_champion' needs a 'register' step"):
        parse_pipeline(document(register=None))
