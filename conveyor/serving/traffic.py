"""Traffic policies: which loaded version answers each row of a request.

- ``single``: one version answers everything.
- ``canary``: each request goes to one variant at random, in proportion to the weights
  (champion 90 / challenger 10), so the split converges to the configured shares.
- ``shadow``: the primary answers; every shadow variant sees the same rows after the
  answer is sent, and its answers go to the prediction log only.
- ``ab``: each row goes to a variant chosen by a stable hash of its key field, so one
  customer always sees the same variant, in every process and after restarts.
"""

from __future__ import annotations

import bisect
import random
import zlib
from dataclasses import dataclass, field
from typing import Literal

from conveyor.serving.endpoint import ModelEndpoint
from conveyor.serving.payload import Payload, refuse

Policy = Literal["single", "canary", "shadow", "ab"]
POLICIES: tuple[Policy, ...] = ("single", "canary", "shadow", "ab")
_BUCKETS = 10_000


@dataclass(frozen=True)
class Variant:
    """One loaded version inside a served model, with its share of traffic in percent."""

    label: str
    endpoint: ModelEndpoint
    weight: float = 100.0


@dataclass(frozen=True)
class Assignment:
    """The rows (positions in the request) one variant answers."""

    variant: Variant
    rows: list[int] | None  # None: every row


@dataclass
class ServedModel:
    """What one name serves: variants and shadows under a policy; from a deployment or a plain model."""

    name: str
    variants: list[Variant]
    policy: Policy = "single"
    shadows: list[Variant] = field(default_factory=list)
    key: str | None = None
    deployment: str | None = None
    revision: int | None = None
    _bounds: list[float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        total, self._bounds = 0.0, []
        for variant in self.variants:
            total += variant.weight
            self._bounds.append(total)

    @property
    def primary(self) -> Variant:
        """The variant that answers when the policy does not split."""
        return self.variants[0]

    def _pick(self, share: float) -> Variant:
        """The variant whose slice of [0, total) holds ``share``."""
        index = bisect.bisect_right(self._bounds, share * self._bounds[-1])
        return self.variants[min(index, len(self.variants) - 1)]

    def assign(self, payload: Payload) -> list[Assignment]:
        """Which variant answers which rows.

        Raises:
            BadRequest: an ``ab`` request whose rows lack the key field.
        """
        if self.policy == "canary":
            return [Assignment(self._pick(random.random()), None)]
        if self.policy != "ab":
            return [Assignment(self.primary, None)]
        keys = payload.column(self.key or "")
        if keys is None or any(key is None for key in keys):
            raise refuse(self.key or "key", "every row needs this key field: A/B assignment is sticky by it")
        groups: dict[str, list[int]] = {}
        by_label = {}
        for position, key in enumerate(keys):
            variant = self._pick(sticky_share(key))
            groups.setdefault(variant.label, []).append(position)
            by_label[variant.label] = variant
        if len(groups) == 1:
            return [Assignment(next(iter(by_label.values())), None)]
        return [Assignment(by_label[label], rows) for label, rows in groups.items()]

    def endpoints(self) -> list[ModelEndpoint]:
        """Every loaded version, shadows included."""
        return [variant.endpoint for variant in (*self.variants, *self.shadows)]


def sticky_share(key: object) -> float:
    """A key's place in [0, 1): the same in every process, unlike ``hash()``."""
    return (zlib.crc32(str(key).encode()) % _BUCKETS) / _BUCKETS
