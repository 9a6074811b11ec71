"""Settings: defaults, precedence of file < environment < flags, errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.core.config import CONFIG_FILE, default_config_text, load_settings
from conveyor.errors import ValidationError


def test_defaults_are_embedded_sqlite_and_local_artifacts(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    assert settings.metadata_url == f"sqlite:///{tmp_path.resolve() / '.conveyor' / 'conveyor.db'}"
    assert settings.artifacts_url == str(tmp_path.resolve() / ".conveyor" / "artifacts")
    assert settings.tracking.flush_interval_ms == 200


def test_file_then_environment_then_flags_take_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / CONFIG_FILE).write_text(
        "metadata:\n  url: sqlite:///from-file.db\ntracking:\n  flush_interval_ms: 50\n  heartbeat_timeout_s: 10\n"
    )
    assert load_settings(tmp_path).metadata_url == "sqlite:///from-file.db"
    monkeypatch.setenv("CONVEYOR_METADATA__URL", "sqlite:///from-env.db")
    monkeypatch.setenv("CONVEYOR_TRACKING__FLUSH_INTERVAL_MS", "75")
    settings = load_settings(tmp_path)
    assert settings.metadata_url == "sqlite:///from-env.db"
    assert settings.tracking.flush_interval_ms == 75
    assert settings.tracking.heartbeat_timeout_s == 10
    flagged = load_settings(tmp_path, metadata={"url": "sqlite:///from-flag.db"})
    assert flagged.metadata_url == "sqlite:///from-flag.db"
    assert flagged.tracking.flush_interval_ms == 75


def test_a_bad_value_in_the_file_names_the_key(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text("tracking:\n  flush_interval_ms: often\n")
    with pytest.raises(ValidationError, match=r"setting 'tracking\.flush_interval_ms'.*'often'") as info:
        load_settings(tmp_path)
    assert info.value.field == "tracking.flush_interval_ms"


def test_an_out_of_range_environment_value_names_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_TRACKING__HEARTBEAT_INTERVAL_S", "-1")
    with pytest.raises(ValidationError, match=r"tracking\.heartbeat_interval_s.*greater than 0"):
        load_settings(tmp_path)


def test_an_unknown_key_is_rejected_by_name(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text("metadata:\n  uri: sqlite:///x.db\n")
    with pytest.raises(ValidationError, match=r"metadata\.uri"):
        load_settings(tmp_path)


def test_broken_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text("metadata:\n  url: [unclosed\n")
    with pytest.raises(ValidationError, match=r"conveyor\.yaml line \d+: not valid YAML"):
        load_settings(tmp_path)


def test_the_written_default_file_loads_to_the_defaults(tmp_path: Path) -> None:
    written, empty = tmp_path / "written", tmp_path / "empty"
    written.mkdir()
    empty.mkdir()
    (written / CONFIG_FILE).write_text(default_config_text())
    from_file = load_settings(written).model_dump(exclude={"workspace"})
    assert from_file == load_settings(empty).model_dump(exclude={"workspace"})
    assert from_file["tracking"]["flush_interval_ms"] == 200


def test_the_workspace_is_found_from_a_subfolder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / CONFIG_FILE).write_text(default_config_text())
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert load_settings().workspace == tmp_path.resolve()


def test_an_unsupported_database_is_a_clear_error(tmp_path: Path) -> None:
    from conveyor.core.db import MetadataStore

    with pytest.raises(ValidationError, match=r"metadata\.url.*unsupported database 'mysql'"):
        MetadataStore("mysql://root@localhost/test")
