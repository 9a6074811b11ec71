"""Alert rules: which monitored series to watch, the condition that is a breach, and
where to say so.

A rule names a metric as ``check.statistic`` (``model_quality.roc_auc``), optionally a
column (``"*"``: any column of that series), and one condition: ``op`` with a
``threshold`` on the point's value, or the point's ``status`` (``drift``). Rules are
written in YAML (``rules: [...]``) and read by ``load_rules``, whose errors name the
file, the rule and the field, so a typo never becomes a rule that silently never fires.
"""

from __future__ import annotations

import hashlib
import math
import operator
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import pydantic_core
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)

from conveyor.core.documents import field_path, read_yaml, validate_document
from conveyor.errors import ValidationError

# The checks a monitoring run writes to ``monitor_results``; a metric names one of them.
CHECKS = ("volume", "data_drift", "prediction_drift", "dataset_drift", "data_quality", "model_quality", "operations",
          "business", "freshness")
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
}
# Statuses a rule may fire on: ``ok`` is never a breach, ``insufficient`` never a verdict.
BREACH_STATUSES = ("drift", "fail", "warn", "info")
UNUSABLE_STATUS = "insufficient"
ANY_COLUMN = "*"
ANY_MODEL = "*"
MODEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}$")
METRIC_PATTERN = re.compile(r"^([a-z_]+)\.([A-Za-z0-9_.-]{1,64})$")
DURATION_PATTERN = re.compile(r"^(\d+)(ms|s|m|h|d)$")
DURATION_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
RESERVED_HEADER_PREFIX = "x-conveyor-"
REVEAL = "reveal"  # serialisation context under which a webhook secret is written out


def duration_ms(text: str) -> int:
    """Milliseconds of a duration such as ``30m``, ``1h``, ``1d``, ``0s``.

    Raises:
        ValueError: ``text`` is not a whole number followed by ms, s, m, h or d.
    """
    match = DURATION_PATTERN.match(text.strip())
    if match is None:
        raise ValueError(f"expected a duration such as 30s, 15m, 1h or 1d, got {text!r}")
    return int(match.group(1)) * DURATION_MS[match.group(2)]


def _field_error(field: str, message: str, value: Any) -> pydantic_core.ValidationError:
    """A pydantic error located at ``field``, for checks that span several fields."""
    error = pydantic_core.PydanticCustomError("alert_rule", message)
    return pydantic_core.ValidationError.from_exception_data(
        "AlertRule", [{"type": error, "loc": (field,), "input": value}])


class LogChannelSpec(BaseModel):
    """Write one line to the ``conveyor.alerts`` logger."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["log"] = "log"

    def key(self) -> str:
        """How deliveries name this channel."""
        return "log"


class EventChannelSpec(BaseModel):
    """Append an ``alert.firing`` / ``alert.resolved`` row to ``platform_events``."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["event"] = "event"

    def key(self) -> str:
        """How deliveries name this channel."""
        return "event"


class WebhookChannelSpec(BaseModel):
    """POST the alert as JSON to ``url``, signed with ``secret`` when one is set."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["webhook"] = "webhook"
    url: str
    secret: SecretStr | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    max_attempts: int = Field(default=5, ge=1, le=10)
    backoff_s: float = Field(default=0.5, ge=0, le=60)
    timeout_s: float = Field(default=10.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        return value

    @field_validator("headers")
    @classmethod
    def _own_headers(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = sorted(name for name in value if name.lower().startswith(RESERVED_HEADER_PREFIX))
        if reserved:
            raise ValueError(f"{', '.join(reserved)}: X-Conveyor-* headers are set by Conveyor")
        return value

    @field_serializer("secret", when_used="always")
    def _hidden_secret(self, value: SecretStr | None, info: pydantic.SerializationInfo) -> str | None:
        if value is None:
            return None
        return value.get_secret_value() if info.context == REVEAL else "**********"

    def key(self) -> str:
        """How deliveries name this channel: the host and a digest of the URL, whose path
        may carry a token (as Slack's do)."""
        host = self.url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
        return f"webhook:{host[:400]}#{hashlib.sha256(self.url.encode()).hexdigest()[:12]}"


ChannelSpec = Annotated[LogChannelSpec | WebhookChannelSpec | EventChannelSpec, Field(discriminator="type")]
CHANNEL_TYPES = ("log", "webhook", "event")


class AlertRule(BaseModel):
    """When a model's monitored series breaches a condition, and whom to tell.

    Exactly one condition: ``op`` and ``threshold`` compare the point's value
    (``metric: model_quality.roc_auc, op: "<", threshold: 0.7``), or ``status``
    matches the point's status (``metric: data_drift.wasserstein, column: "*",
    status: drift``). A point without a value, or with status ``insufficient``, is
    neither a breach nor a clearance.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,128}$")
    model: str
    metric: str
    column: str | None = None
    op: Literal[">", ">=", "<", "<=", "==", "!="] | None = None
    threshold: float | None = None
    status: str | None = None
    severity: Literal["info", "warning", "critical"] = "warning"
    cooldown: str = "0s"
    channels: list[ChannelSpec] = Field(default_factory=lambda: [LogChannelSpec()])

    @field_validator("model")
    @classmethod
    def _model_name(cls, value: str) -> str:
        if value != ANY_MODEL and not MODEL_PATTERN.match(value):
            raise ValueError(f"must be a model name or '*' for every model, got {value!r}")
        return value

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        match = METRIC_PATTERN.match(value)
        if match is None:
            raise ValueError(f"expected check.statistic such as model_quality.roc_auc, got {value!r}")
        if match.group(1) not in CHECKS:
            raise ValueError(f"unknown check {match.group(1)!r} (checks: {', '.join(CHECKS)})")
        return value

    @field_validator("column")
    @classmethod
    def _column(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("threshold")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {value!r}")
        return value

    @field_validator("status")
    @classmethod
    def _breach_status(cls, value: str | None) -> str | None:
        if value is not None and value not in BREACH_STATUSES:
            raise ValueError(f"must be one of {', '.join(BREACH_STATUSES)}, got {value!r}")
        return value

    @field_validator("cooldown")
    @classmethod
    def _duration(cls, value: str) -> str:
        duration_ms(value)
        return value.strip()

    @field_validator("channels")
    @classmethod
    def _distinct(cls, value: list[Any]) -> list[Any]:
        keys = [channel.key() for channel in value]
        for index, key in enumerate(keys):
            if key in keys[:index]:
                raise ValueError(f"channels[{index}] repeats channels[{keys.index(key)}] ({key.split(':')[0]})")
        return value

    @model_validator(mode="after")
    def _one_condition(self) -> AlertRule:
        if self.status is not None and (self.op is not None or self.threshold is not None):
            raise _field_error("status", "give either status or op with threshold, not both", self.status)
        if self.op is not None and self.threshold is None:
            raise _field_error("threshold", f"required with op {self.op!r}", None)
        if self.threshold is not None and self.op is None:
            raise _field_error("op", f"required with threshold (one of {' '.join(OPERATORS)})", None)
        if self.status is None and self.op is None:
            raise _field_error("op", "a condition is required: op with threshold, or status", None)
        return self

    @property
    def check(self) -> str:
        """The check part of ``metric``."""
        return self.metric.split(".", 1)[0]

    @property
    def statistic(self) -> str:
        """The statistic part of ``metric``."""
        return self.metric.split(".", 1)[1]

    @property
    def cooldown_ms(self) -> int:
        """The cool-down in milliseconds."""
        return duration_ms(self.cooldown)

    def applies_to(self, model: str) -> bool:
        """Whether the rule watches ``model``."""
        return self.model in (ANY_MODEL, model)

    def breached_by(self, value: float | None, status: str) -> bool | None:
        """True for a breach, False for a clearance, None when the point says neither."""
        if value is None or math.isnan(value) or status == UNUSABLE_STATUS:
            return None
        if self.status is not None:
            return status == self.status
        assert self.op is not None and self.threshold is not None
        return OPERATORS[self.op](value, self.threshold)

    def condition(self) -> dict[str, Any]:
        """The condition as payload fields: ``op`` and ``threshold``, or ``status``."""
        if self.status is not None:
            return {"status": self.status}
        return {"op": self.op, "threshold": self.threshold}

    def stored(self) -> dict[str, Any]:
        """The JSON the metadata store keeps, secrets included."""
        return self.model_dump(mode="json", context=REVEAL)


def _where(location: tuple[int | str, ...]) -> str:
    """``channels[0].url`` for pydantic's ``('channels', 0, 'webhook', 'url')``."""
    return field_path(location, CHANNEL_TYPES, "rule")


def parse_rule(document: Any, source: str = "rule") -> AlertRule:
    """Build an ``AlertRule`` from plain data (a YAML mapping, a JSON body).

    Raises:
        ValidationError: the first problem, as ``"<source> <field>: <problem>"``, with ``field`` set.
    """
    return validate_document(AlertRule, document, source, "rule", _where)


def load_rules(path: str | Path) -> list[AlertRule]:
    """The rules of a YAML file holding ``rules: [...]``, checked all or none.

    Raises:
        ValidationError: the file is unreadable or not YAML, or a rule is invalid or a
            duplicate; the message names the file, the rule (``rules[1] (approval-drop)``)
            and the field, e.g. ``alerts.yaml rules[1] (approval-drop) op: ...``.
    """
    path = Path(path)
    document = read_yaml(path, "alert rules file")
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        raise ValidationError(f"{path}: expected a mapping with a list under 'rules'", field="rules")
    if unknown := sorted(str(key) for key in document.keys() - {"rules"}):
        raise ValidationError(f"{path}: unknown key {unknown[0]!r} next to 'rules'", field=unknown[0])
    rules: list[AlertRule] = []
    for index, item in enumerate(document["rules"]):
        name = item.get("name") if isinstance(item, dict) else None
        source = f"{path} rules[{index}]" + (f" ({name})" if isinstance(name, str) else "")
        rule = parse_rule(item, source)
        if any(earlier.name == rule.name for earlier in rules):
            raise ValidationError(f"{source} name: duplicate rule name {rule.name!r}", field="name")
        rules.append(rule)
    return rules
