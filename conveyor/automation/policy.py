"""Retraining policies: when a model is retrained, how the candidate is promoted, how the
new champion is watched, and the limits on all of it.

A policy is written in YAML next to the pipeline (or built in Python) and checked when
it is applied; errors name the file and the field (``policy.yaml triggers[1].above: ...``),
so a typo never becomes a policy that silently never fires::

    name: credit-risk-retrain
    model: credit-risk
    triggers:
      - {type: schedule, cron: "0 3 * * 1", timezone: Europe/Paris, catchup: skip}
      - {type: drift, metric: dataset_drift.share_drifted, above: 0.3, over: 7d}
      - {type: quality, metric: model_quality.roc_auc, below: 0.7, over: 14d, min_labels: 200}
      - {type: staleness, max_age: 90d, feature_views: true}
      - {type: new_data, min_rows: 1000}
    monitor: {every: 1d, window: 1d}
    retrain: {pipeline: credit-risk.yaml, window: 180d, overrides: ["train.params.n_estimators=300"]}
    promotion: {margin: 0.005, automatic_tiers: [low, medium]}
    watch:
      period: 14d
      checks:
        - {metric: model_quality.roc_auc, max_drop: 0.03, min_labels: 100}
        - {metric: dataset_drift.share_drifted, max_rise: 0.2}
    limits: {cooldown: 7d, max_retrains: 4, per: 30d, max_concurrent: 1}
    notify: [{type: log}, {type: webhook, url: "https://hooks.example.com/ml"}]
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pydantic
from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from conveyor.core.documents import field_path, read_yaml, validate_document
from conveyor.errors import ValidationError
from conveyor.monitoring.alerts.rules import (
    CHANNEL_TYPES,
    METRIC_PATTERN,
    MODEL_PATTERN,
    ChannelSpec,
    LogChannelSpec,
    duration_ms,
)
from conveyor.registry.uris import check_alias

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
RiskTier = Literal["low", "medium", "high"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: str) -> str:
    duration_ms(value)
    return value


def _metric(value: str) -> str:
    if not METRIC_PATTERN.match(value):
        raise ValueError(f"{value!r} is not a monitored series such as model_quality.roc_auc")
    return value


Duration = Annotated[str, pydantic.AfterValidator(_duration)]
Metric = Annotated[str, pydantic.AfterValidator(_metric)]


class ScheduleTrigger(_Strict):
    """Retrain at every slot of a cron expression, in a time zone.

    ``catchup`` says what happens to slots missed while no agent ran: ``skip`` runs a slot
    only if it is at most ``grace`` late, ``once`` runs one job for the newest missed slot.
    """

    type: Literal["schedule"]
    cron: str
    timezone: str = "UTC"
    catchup: Literal["skip", "once"] = "skip"
    grace: Duration = "1h"

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a cron expression such as '0 3 * * 1' (minute hour day month weekday)")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone such as UTC or Europe/Paris") from None
        return value


class DriftTrigger(_Strict):
    """Retrain when a monitored drift series of the champion averages above ``above`` over
    the last ``over`` (by default: the share of drifted input columns)."""

    type: Literal["drift"]
    metric: Metric = "dataset_drift.share_drifted"
    column: str = ""
    above: float = Field(0.3, ge=0)
    over: Duration = "7d"


class QualityTrigger(_Strict):
    """Retrain when a quality metric of the champion, over the last ``over`` and on at
    least ``min_labels`` labelled rows, averages below ``below``."""

    type: Literal["quality"]
    metric: Metric = "model_quality.roc_auc"
    below: float
    over: Duration = "7d"
    min_labels: int = Field(100, ge=1)


class StalenessTrigger(_Strict):
    """Retrain when the champion is older than ``max_age``, or (``feature_views``) when a
    feature view it reads is older than its freshness SLO."""

    type: Literal["staleness"]
    max_age: Duration | None = None
    feature_views: bool = False

    @model_validator(mode="after")
    def _something(self) -> StalenessTrigger:
        if self.max_age is None and not self.feature_views:
            raise ValueError("give 'max_age', 'feature_views: true' or both")
        return self


class NewDataTrigger(_Strict):
    """Retrain when at least ``min_rows`` labelled predictions arrived since the last training."""

    type: Literal["new_data"]
    min_rows: int = Field(ge=1)


Trigger = Annotated[ScheduleTrigger | DriftTrigger | QualityTrigger | StalenessTrigger | NewDataTrigger,
                    Field(discriminator="type")]
TRIGGER_TYPES = ("schedule", "drift", "quality", "staleness", "new_data")


class MonitorSpec(_Strict):
    """Monitor the champion every ``every`` over the window that just closed, so drift,
    quality and watch checks have fresh figures; ``lookback`` re-monitors earlier windows
    too, so labels that arrive late are counted."""

    every: Duration = "1d"
    window: Duration | None = None
    lookback: Duration | None = None
    min_labels: int = Field(30, ge=1)


class RetrainSpec(_Strict):
    """What a retrain runs: the pipeline file (relative to the policy file), trained on the
    last ``window`` of data up to the trigger's time, with ``overrides`` (``KEY=VALUE``)."""

    pipeline: str
    window: Duration | None = None
    overrides: list[str] = []
    executor: Literal["local", "ray"] | None = None


class PromotionSpec(_Strict):
    """The candidate must beat the champion on the pipeline's recent test rows by ``margin``
    in ``metric`` (the pipeline's gate); risk tiers in ``automatic_tiers`` are then
    promoted at once, the others wait for a validator's approval."""

    margin: float = Field(0.0, ge=0)
    metric: str | None = None
    automatic_tiers: list[RiskTier] = ["low", "medium"]


class WatchCheck(_Strict):
    """A figure of the new champion that must not fall (``max_drop``) or rise (``max_rise``)
    more than that from the previous champion's last known value."""

    metric: Metric
    column: str = ""
    max_drop: float | None = Field(None, ge=0)
    max_rise: float | None = Field(None, ge=0)
    min_labels: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _one_bound(self) -> WatchCheck:
        if (self.max_drop is None) == (self.max_rise is None):
            raise ValueError("give exactly one of 'max_drop' or 'max_rise'")
        return self


class WatchSpec(_Strict):
    """After a promotion, ``period`` during which a breach of any check rolls the alias back."""

    period: Duration = "14d"
    checks: list[WatchCheck] = Field(default_factory=lambda: [
        WatchCheck(metric="model_quality.roc_auc", max_drop=0.03, min_labels=100),
        WatchCheck(metric="dataset_drift.share_drifted", max_rise=0.2),
    ])


class Limits(_Strict):
    """At most ``max_retrains`` per ``per``, none within ``cooldown`` of the last, at most
    ``max_concurrent`` of this policy's jobs at once; a job is tried ``max_attempts`` times."""

    cooldown: Duration = "1d"
    max_retrains: int = Field(4, ge=1)
    per: Duration = "30d"
    max_concurrent: int = Field(1, ge=1)
    max_attempts: int = Field(3, ge=1, le=20)


class Policy(_Strict):
    """A retraining policy of one registered model."""

    name: str
    model: str
    alias: str = "champion"
    description: str = ""
    triggers: list[Trigger] = Field(min_length=1)
    monitor: MonitorSpec | None = None
    retrain: RetrainSpec
    promotion: PromotionSpec = PromotionSpec()
    watch: WatchSpec | None = WatchSpec()
    limits: Limits = Limits()
    notify: list[ChannelSpec] = Field(default_factory=lambda: [LogChannelSpec(type="log")])

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(f"{value!r} is not a policy name (letters, digits, '_', '.', '-')")
        return value

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        if not MODEL_PATTERN.match(value):
            raise ValueError(f"{value!r} is not a model name")
        return value

    @field_validator("alias")
    @classmethod
    def _alias(cls, value: str) -> str:
        try:
            check_alias(value)
        except ValidationError as exc:
            raise ValueError(exc.message) from None
        return value

    def triggers_of(self, kind: type[BaseModel]) -> list[Any]:
        """The triggers of one type, in the order written."""
        return [trigger for trigger in self.triggers if isinstance(trigger, kind)]

    def stored(self) -> dict[str, Any]:
        """The JSON the metadata store keeps (webhook secrets included)."""
        from conveyor.monitoring.alerts.rules import REVEAL

        return self.model_dump(mode="json", context=REVEAL)


def _where(location: tuple[int | str, ...]) -> str:
    """``triggers[1].above`` for pydantic's ``('triggers', 1, 'drift', 'above')``."""
    return field_path(location, (*TRIGGER_TYPES, *CHANNEL_TYPES), "policy")


def parse_policy(document: Any, source: str = "policy", base: Path | None = None) -> Policy:
    """Build a ``Policy`` from plain data; ``retrain.pipeline`` is resolved from ``base``
    (the policy file's folder, else the current folder).

    Raises:
        ValidationError: the first problem, as ``"<source> <field>: <problem>"``, with ``field`` set.
    """
    policy = validate_document(Policy, document, source, "policy", _where)
    pipeline = Path(policy.retrain.pipeline)
    if not pipeline.is_absolute():
        pipeline = ((base or Path.cwd()) / pipeline).resolve()
    return policy.model_copy(update={"retrain": policy.retrain.model_copy(update={"pipeline": str(pipeline)})})


def load_policy(path: str | Path) -> Policy:
    """The policy of a YAML file; its pipeline path resolves from the file's folder.

    Raises:
        ValidationError: the file is unreadable, not YAML, or not a valid policy.
    """
    path = Path(path)
    document = read_yaml(path, "policy file")
    return parse_policy(document, str(path), path.resolve().parent)
