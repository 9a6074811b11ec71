"""Typed settings of a workspace.

Settings come, lowest precedence first, from embedded defaults, the workspace's
``conveyor.yaml``, ``CONVEYOR_*`` environment variables (nested keys joined by
``__``, e.g. ``CONVEYOR_METADATA__URL``) and finally flags passed by the caller.
A bad value is one ``ValidationError`` naming the key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import pydantic
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from conveyor.errors import ValidationError

CONFIG_FILE = "conveyor.yaml"
STATE_DIR = ".conveyor"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetadataSettings(_Section):
    """Where runs, models and every other record live."""

    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: SQLite at .conveyor/conveyor.db in the workspace.",
    )
    pool_size: int = Field(default=5, ge=1, le=100)


class ArtifactSettings(_Section):
    """Where artifact bytes live."""

    url: str | None = Field(
        default=None,
        description="A folder or any fsspec URL (s3://bucket/prefix); default: .conveyor/artifacts.",
    )


class TrackingSettings(_Section):
    """How runs log: the durability interval and liveness of runs."""

    flush_interval_ms: int = Field(
        default=200,
        ge=1,
        le=60_000,
        description="Upper bound on how long a logged metric waits before it is in the metadata store.",
    )
    heartbeat_interval_s: float = Field(default=5.0, gt=0, le=3600)
    heartbeat_timeout_s: float = Field(
        default=60.0, gt=0, description="A running run silent this long is marked killed."
    )


RiskTier = Literal["low", "medium", "high"]
def _hyphenated(value: Any) -> Any:
    return value.replace("_", "-") if isinstance(value, str) else value


Role = Annotated[
    Literal["platform-admin", "data-scientist", "ml-engineer", "data-engineer", "validator", "viewer"],
    BeforeValidator(_hyphenated),
]
"""A role of the permission matrix; ``data_scientist`` is read as ``data-scientist``."""


class ValidationSettings(_Section):
    """Thresholds a model version must meet to pass validation."""

    max_degradation: float = Field(
        default=0.01, ge=0, description="Allowed drop of the primary metric against the champion."
    )
    max_psi: float = Field(default=0.25, gt=0, description="Largest population stability index between training and holdout.")
    min_rows: int = Field(default=100, ge=1)
    min_segment_rows: int = Field(default=30, ge=1)


class RegistrySettings(_Section):
    """Rules of the model registry and its approval workflow."""

    protected_aliases: list[str] = Field(
        default_factory=lambda: ["champion"],
        description="Aliases that only approved versions may hold when the model's tier requires approval.",
    )
    approval_required_tiers: list[RiskTier] = Field(default_factory=lambda: ["high"])
    auto_approve_tiers: list[RiskTier] = Field(
        default_factory=list, description="Tiers whose versions are approved as soon as validation passes."
    )
    default_risk_tier: RiskTier = "medium"
    trusted_types: list[str] = Field(
        default_factory=lambda: [
            "sklearn.tree._tree.Tree",
            "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        ],
        description="Types skops does not trust by default that this workspace loads anyway (decision trees: "
        "every forest and gradient boosting). Set [] where models may come from untrusted authors.",
    )
    validation: ValidationSettings = Field(default_factory=ValidationSettings)


class OnlineStoreSettings(_Section):
    """Where materialised feature values are served from."""

    type: Literal["sqlite", "redis"] = Field(default="sqlite", description="sqlite (embedded) or redis (teams).")
    path: str | None = Field(default=None, description="SQLite file; default: .conveyor/online.db.")
    url: str = Field(default="redis://127.0.0.1:6379/0", description="Redis URL, when type is redis.")
    namespace: str = Field(
        default="conveyor", pattern=r"^[A-Za-z0-9_.-]+$", description="Prefix of every Redis key of this workspace."
    )


class OfflineStoreSettings(_Section):
    """How DuckDB builds training sets: memory it may use before spilling to disk."""

    memory_limit: str = Field(default="2GiB", pattern=r"^\d+(\.\d+)?\s*(%|[KMGT]i?B)$",
                              description="DuckDB memory_limit, e.g. 4GiB or 60% of RAM; past it DuckDB spills to disk.")
    threads: int | None = Field(default=None, ge=1, description="DuckDB threads; default: one per core.")
    temp_directory: str | None = Field(default=None, description="Spill folder; default: .conveyor/tmp.")


class FeatureSettings(_Section):
    """Where feature definitions live and which stores serve them."""

    path: str = Field(default="features", description="Folder of definition modules, relative to the workspace.")
    module: str | None = Field(default=None, description="An importable module holding the definitions instead.")
    postgres_url: str | None = Field(
        default=None, description="Database of PostgresSource tables; default: metadata.url when it is PostgreSQL."
    )
    online: OnlineStoreSettings = Field(default_factory=OnlineStoreSettings)
    offline: OfflineStoreSettings = Field(default_factory=OfflineStoreSettings)


class ServingSettings(_Section):
    """How model servers log their predictions and follow their deployments."""

    prediction_log: str | None = Field(
        default=None, description="Folder or fsspec URL of the prediction log; default: .conveyor/predictions."
    )
    log_predictions: bool = Field(default=True, description="Write every answered request to the prediction log.")
    log_queue_rows: int = Field(
        default=100_000, ge=1, description="Requests waiting for the log writer; beyond this new ones are dropped."
    )
    log_flush_interval_s: float = Field(default=1.0, gt=0, description="Longest a prediction waits to be written.")
    poll_interval_s: float = Field(
        default=2.0, gt=0, description="How often a server checks its deployment for alias moves and policy changes."
    )


class _YamlSource(PydanticBaseSettingsSource):
    """Reads one YAML file; a missing file contributes nothing."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            data = yaml.safe_load(self.path.read_text()) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ValidationError(f"{self.path.name}{where}: not valid YAML", field=CONFIG_FILE) from exc
        if not isinstance(data, dict):
            raise ValidationError(f"{self.path.name}: expected a mapping of settings", field=CONFIG_FILE)
        return data


class Settings(BaseSettings):
    """All settings of one workspace."""

    model_config = SettingsConfigDict(env_prefix="CONVEYOR_", env_nested_delimiter="__", extra="forbid")

    workspace: Path = Field(default_factory=Path.cwd)
    metadata: MetadataSettings = Field(default_factory=MetadataSettings)
    artifacts: ArtifactSettings = Field(default_factory=ArtifactSettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    server: str | None = Field(
        default=None, pattern=r"^https?://",
        description="A Conveyor server's URL (CONVEYOR_SERVER): the SDK and CLI then work through it, not the stores.",
    )
    token: str | None = Field(default=None, description="API token for the server (CONVEYOR_TOKEN).", repr=False)
    user: str | None = Field(default=None, description="Who acts (CONVEYOR_USER); default: the login name.")
    project: str = Field(
        default="default", min_length=1, max_length=128,
        description="The project acted in (CONVEYOR_PROJECT): a user's grants there add to their global roles.",
    )
    roles: dict[str, list[Role]] = Field(default_factory=dict, description="User name -> roles.")
    default_roles: list[Role] = Field(default_factory=lambda: ["data-scientist", "ml-engineer", "data-engineer"])

    _yaml_path: ClassVar[Path | None] = None  # set on the per-workspace subclass load_settings makes

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _YamlSource(settings_cls, cls._yaml_path)

    @property
    def state_dir(self) -> Path:
        """The workspace's private folder for embedded stores and write-ahead logs."""
        return self.workspace / STATE_DIR

    @property
    def metadata_url(self) -> str:
        """The effective metadata URL (embedded SQLite unless configured)."""
        return self.metadata.url or f"sqlite:///{self.state_dir / 'conveyor.db'}"

    @property
    def artifacts_url(self) -> str:
        """The effective artifact root (a local folder unless configured)."""
        return self.artifacts.url or str(self.state_dir / "artifacts")

    @property
    def prediction_log_url(self) -> str:
        """The effective prediction log root (a local folder unless configured)."""
        return self.serving.prediction_log or str(self.state_dir / "predictions")


def find_workspace(start: Path | None = None) -> Path:
    """The workspace folder: ``CONVEYOR_WORKSPACE``, else the nearest folder with a
    ``conveyor.yaml`` at or above ``start``, else ``start`` itself."""
    if env := os.environ.get("CONVEYOR_WORKSPACE"):
        return Path(env).expanduser().resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    return here


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"])
    value = error.get("input")
    shown = "" if isinstance(value, dict) or error["type"] == "missing" else f" (got {value!r})"
    return f"setting '{key}': {error['msg']}{shown}"


def load_settings(workspace: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings of ``workspace`` (found from the current folder if omitted).

    ``overrides`` are the highest-precedence values, e.g. from CLI flags:
    ``load_settings(metadata={"url": "postgresql+psycopg://..."})``.

    Raises:
        ValidationError: a value is of the wrong type or out of range; the message names the key.
    """
    root = (Path(workspace) if workspace else find_workspace()).resolve()
    bound = type("WorkspaceSettings", (Settings,), {"_yaml_path": root / CONFIG_FILE})
    try:
        return bound(workspace=root, **overrides)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        raise ValidationError(_describe(first), field=".".join(map(str, first["loc"]))) from None


def default_config_text() -> str:
    """The commented ``conveyor.yaml`` that ``conveyor init`` writes."""
    return """\
# Conveyor workspace settings. Precedence: flags > CONVEYOR_* environment
# variables (CONVEYOR_METADATA__URL, ...) > this file > embedded defaults.
metadata:
  # SQLAlchemy URL. Default: SQLite in .conveyor/conveyor.db.
  # Team mode: postgresql+psycopg://user@host:5432/conveyor
  url: null
artifacts:
  # A folder or any fsspec URL (s3://bucket/prefix). Default: .conveyor/artifacts.
  url: null
tracking:
  # A logged metric is in the metadata store at most this long after log_metric
  # returns; before that it is already safe in a write-ahead file.
  flush_interval_ms: 200
  heartbeat_interval_s: 5
  heartbeat_timeout_s: 60
registry:
  # Only approved versions may hold these aliases when the model's risk tier
  # requires approval.
  protected_aliases: [champion]
  approval_required_tiers: [high]
  # Tiers whose versions are approved as soon as validation passes.
  auto_approve_tiers: []
  default_risk_tier: medium
  # Types skops distrusts that this workspace loads anyway: scikit-learn's decision
  # trees (forests, gradient boosting). A crafted tree file can crash the process at
  # predict time; set [] where models may come from untrusted authors.
  trusted_types:
    - sklearn.tree._tree.Tree
    - sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor
  validation:
    max_degradation: 0.01   # allowed drop of AUC (or relative RMSE rise) vs the champion
    max_psi: 0.25
    min_rows: 100
    min_segment_rows: 30
features:
  path: features          # folder of definition modules (or module: a.importable.module)
  module: null
  postgres_url: null      # database of PostgresSource tables; default: metadata.url if PostgreSQL
  online:
    type: sqlite          # sqlite (.conveyor/online.db) or redis
    path: null
    url: redis://127.0.0.1:6379/0
    namespace: conveyor
  offline:
    memory_limit: 2GiB    # DuckDB spills to temp_directory beyond this (or e.g. 60% of RAM)
    threads: null
    temp_directory: null  # default: .conveyor/tmp
# Who acts (also CONVEYOR_USER) and what each user may do. Roles: platform-admin,
# data-scientist, ml-engineer, data-engineer, validator, viewer (docs/permissions.md).
# A user created with `conveyor users create` takes their roles from the metadata
# store instead: global ones plus those granted in `project` (also CONVEYOR_PROJECT).
user: null
project: default
roles: {}
default_roles: [data-scientist, ml-engineer, data-engineer]
"""
