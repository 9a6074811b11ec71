"""What a deployment declares: the model, the policy, the traffic split, shadows and the A/B key.

Targets are aliases (``champion``, followed as they move) or fixed versions (``3`` or
``v3``). The rules of each policy are checked here, so a bad deployment is refused
before it is stored, with the option at fault named.
"""

from __future__ import annotations

import math
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from conveyor.errors import ValidationError
from conveyor.serving.traffic import Policy

_VERSION = re.compile(r"^v?(\d+)$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def version_of(target: str) -> int | None:
    """The version number a target pins (``3``, ``v3``), or None for an alias."""
    match = _VERSION.match(target)
    return int(match[1]) if match else None


def _check_target(target: str) -> str:
    if version_of(target) is None and not _ALIAS.match(target):
        raise ValueError(f"{target!r} is neither an alias nor a version number (3 or v3)")
    return target


class Route(BaseModel):
    """One target of the traffic split and its share in percent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: str
    weight: float = Field(default=100.0, gt=0, le=100)

    @field_validator("target")
    @classmethod
    def _known_form(cls, value: str) -> str:
        return _check_target(value)


class DeploymentSpec(BaseModel):
    """A deployment's declared state; its targets resolve to versions at serving time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1)
    policy: Policy = "single"
    traffic: list[Route] = Field(default_factory=lambda: [Route(target="champion")])
    shadow: list[str] = Field(default_factory=list)
    key: str | None = None

    @field_validator("shadow")
    @classmethod
    def _known_forms(cls, value: list[str]) -> list[str]:
        return [_check_target(target) for target in value]

    @model_validator(mode="after")
    def _fits_policy(self) -> DeploymentSpec:
        targets = [route.target for route in self.traffic] + list(self.shadow)
        if len(set(targets)) != len(targets):
            raise ValueError("traffic: each target may appear once (shadows included)")
        if self.policy in ("single", "shadow") and len(self.traffic) != 1:
            raise ValueError(f"traffic: a {self.policy} deployment sends all traffic to one target")
        if self.policy in ("canary", "ab"):
            if len(self.traffic) < 2:
                raise ValueError(f"traffic: a {self.policy} deployment splits traffic between two targets or more")
            total = sum(route.weight for route in self.traffic)
            if not math.isclose(total, 100.0, abs_tol=1e-6):
                raise ValueError(f"traffic: the weights add up to {total:g}, not 100")
        if (self.policy == "shadow") != bool(self.shadow):
            raise ValueError("shadow: shadow targets go with policy shadow, and it needs at least one")
        if (self.policy == "ab") != (self.key is not None):
            raise ValueError("key: policy ab assigns rows by a key field, and only ab takes one")
        return self

    def targets(self) -> list[str]:
        """Every target, traffic first, then shadows."""
        return [route.target for route in self.traffic] + list(self.shadow)


def parse_traffic(items: list[str]) -> list[Route]:
    """``["champion=90", "challenger=10"]`` (or one comma-separated item) as routes; a
    target without ``=weight`` takes the rest of 100 shared equally.

    Raises:
        ValidationError: naming ``traffic`` and the item at fault.
    """
    pieces = [piece.strip() for item in items for piece in item.split(",") if piece.strip()]
    parsed: list[tuple[str, float | None]] = []
    for piece in pieces:
        target, _, weight = piece.partition("=")
        try:
            parsed.append((target.strip(), float(weight) if weight else None))
        except ValueError:
            raise ValidationError(f"traffic {piece!r}: the weight must be a number, as in champion=90",
                                  field="traffic") from None
    unweighted = [target for target, weight in parsed if weight is None]
    rest = 100.0 - sum(weight for _, weight in parsed if weight is not None)
    share = rest / len(unweighted) if unweighted else 0.0
    try:
        return [Route(target=target, weight=share if weight is None else weight) for target, weight in parsed]
    except ValueError as exc:
        raise ValidationError(f"traffic {pieces}: {exc.errors()[0]['msg']}", field="traffic") from None
