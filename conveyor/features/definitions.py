"""Feature definitions as code: entities, sources, feature views and feature services.

Users write these objects in the workspace's ``features/`` folder; ``apply`` stores each
as a versioned spec (a JSON document) in the metadata store. Every object checks its own
fields when it is built, so a typo fails where it was written, naming the object and field.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

from conveyor.errors import ValidationError
from conveyor.features.dtypes import DTYPES
from conveyor.features.sources import Source, source_from_spec

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,127}$")


def _check(pattern: re.Pattern[str], value: object, what: str, field_name: str, kind: str) -> None:
    if not isinstance(value, str) or not pattern.match(value):
        rule = "letters, digits and _" if pattern is _IDENTIFIER else "letters, digits, _ and -"
        raise ValidationError(f"{what}: {field_name} {value!r} must be a name of {rule}", field=f"{kind}.{field_name}")


def spec_digest(spec: dict[str, Any]) -> str:
    """The sha256 of a spec's canonical JSON: equal specs, equal digests."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class Definition:
    """What every stored definition shares: a kind, a name, a spec."""

    kind: ClassVar[str]
    name: str

    def to_spec(self) -> dict[str, Any]:
        """The JSON-ready document stored as a version of this object."""
        raise NotImplementedError

    @property
    def label(self) -> str:
        """``feature view 'customer_stats'``: how errors and plans name the object."""
        return f"{self.kind.replace('_', ' ')} {self.name!r}"


@dataclass(frozen=True)
class Entity(Definition):
    """A thing features describe (customer, merchant), identified by its join keys."""

    kind: ClassVar[str] = "entity"
    name: str
    join_keys: Sequence[str]
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(_NAME, self.name, "entity", "name", self.kind)
        if isinstance(self.join_keys, str) or not self.join_keys:
            raise ValidationError(f"{self.label}: join_keys must be a non-empty list of column names",
                                  field="entity.join_keys")
        for key in self.join_keys:
            _check(_IDENTIFIER, key, self.label, "join_keys", self.kind)
        object.__setattr__(self, "join_keys", tuple(self.join_keys))

    def to_spec(self) -> dict[str, Any]:
        return {"name": self.name, "join_keys": list(self.join_keys), "description": self.description,
                "tags": dict(self.tags)}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Entity:
        """The entity a stored spec describes."""
        return cls(spec["name"], spec["join_keys"], spec.get("description", ""), spec.get("tags", {}))


@dataclass(frozen=True)
class Feature:
    """One typed column of a feature view."""

    name: str
    dtype: str
    description: str = ""

    def __post_init__(self) -> None:
        _check(_IDENTIFIER, self.name, "feature", "name", "feature")
        if self.dtype not in DTYPES:
            raise ValidationError(f"feature {self.name!r}: dtype {self.dtype!r} is not one of {', '.join(DTYPES)}",
                                  field="feature.dtype")


@dataclass(frozen=True)
class FeatureView(Definition):
    """Typed features of some entities, read from a source, valid for ``ttl`` after their timestamp."""

    kind: ClassVar[str] = "feature_view"
    name: str
    entities: Sequence[Entity | str]
    source: Source
    timestamp_field: str
    features: Sequence[Feature]
    ttl: timedelta | None = None
    transform: str | None = None
    created_timestamp_field: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    owner: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        _check(_IDENTIFIER, self.name, "feature view", "name", self.kind)
        if isinstance(self.entities, (str, Entity)) or not self.entities:
            raise ValidationError(f"{self.label}: entities must be a non-empty list", field="feature_view.entities")
        if not isinstance(self.source, Source):
            raise ValidationError(f"{self.label}: source must be a FileSource, SqlSource or PostgresSource, "
                                  f"not {type(self.source).__name__}", field="feature_view.source")
        _check(_IDENTIFIER, self.timestamp_field, self.label, "timestamp_field", self.kind)
        if self.created_timestamp_field is not None:
            _check(_IDENTIFIER, self.created_timestamp_field, self.label, "created_timestamp_field", self.kind)
        if not self.features or not all(isinstance(f, Feature) for f in self.features):
            raise ValidationError(f"{self.label}: features must be a non-empty list of Feature",
                                  field="feature_view.features")
        names = [f.name for f in self.features]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise ValidationError(f"{self.label}: feature {dupes[0]!r} is declared twice", field="feature_view.features")
        if self.ttl is not None and (not isinstance(self.ttl, timedelta) or self.ttl <= timedelta(0)):
            raise ValidationError(f"{self.label}: ttl must be a positive timedelta or None", field="feature_view.ttl")
        object.__setattr__(self, "entities", tuple(self.entities))
        object.__setattr__(self, "features", tuple(self.features))

    @property
    def entity_names(self) -> tuple[str, ...]:
        """Names of the entities, whether given as objects or names."""
        return tuple(e.name if isinstance(e, Entity) else e for e in self.entities)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Declared feature names, in order."""
        return tuple(f.name for f in self.features)

    def feature(self, name: str) -> Feature:
        """The declared feature called ``name``."""
        for candidate in self.features:
            if candidate.name == name:
                return candidate
        raise ValidationError(f"{self.label} has no feature {name!r}", field=f"{self.name}:{name}")

    def __getitem__(self, names: Sequence[str]) -> FeatureSelection:
        """A subset of this view's features, for a feature service: ``view[["f1", "f2"]]``."""
        selected = [names] if isinstance(names, str) else list(names)
        for name in selected:
            self.feature(name)
        return FeatureSelection(self.name, tuple(selected))

    def to_spec(self) -> dict[str, Any]:
        return {
            "name": self.name, "entities": list(self.entity_names), "source": self.source.to_spec(),
            "timestamp_field": self.timestamp_field, "created_timestamp_field": self.created_timestamp_field,
            "features": [{"name": f.name, "dtype": f.dtype, "description": f.description} for f in self.features],
            "ttl_seconds": self.ttl.total_seconds() if self.ttl else None, "transform": self.transform,
            "tags": dict(self.tags), "owner": self.owner, "description": self.description,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> FeatureView:
        """The view a stored spec describes (entities by name)."""
        ttl = spec.get("ttl_seconds")
        return cls(
            spec["name"], spec["entities"], source_from_spec(spec["source"]), spec["timestamp_field"],
            [Feature(f["name"], f["dtype"], f.get("description", "")) for f in spec["features"]],
            timedelta(seconds=ttl) if ttl is not None else None, spec.get("transform"),
            spec.get("created_timestamp_field"), spec.get("tags", {}), spec.get("owner"), spec.get("description", ""),
        )


@dataclass(frozen=True)
class FeatureSelection:
    """Some features of one view, by name."""

    view: str
    features: tuple[str, ...]


@dataclass(frozen=True)
class FeatureService(Definition):
    """The named set of features a model consumes."""

    kind: ClassVar[str] = "feature_service"
    name: str
    features: Sequence[FeatureView | FeatureSelection]
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    owner: str | None = None

    def __post_init__(self) -> None:
        _check(_NAME, self.name, "feature service", "name", self.kind)
        if isinstance(self.features, (FeatureView, FeatureSelection)) or not self.features:
            raise ValidationError(f"{self.label}: features must be a non-empty list of views or view[[...]]",
                                  field="feature_service.features")
        selections = []
        for item in self.features:
            if isinstance(item, FeatureView):
                item = FeatureSelection(item.name, item.feature_names)
            if not isinstance(item, FeatureSelection):
                raise ValidationError(f"{self.label}: {item!r} is neither a feature view nor view[[...]]",
                                      field="feature_service.features")
            selections.append(item)
        object.__setattr__(self, "features", tuple(selections))

    @property
    def refs(self) -> list[str]:
        """The ``view:feature`` references this service serves, in order."""
        return [f"{s.view}:{name}" for s in self.features for name in s.features]  # type: ignore[union-attr]

    def to_spec(self) -> dict[str, Any]:
        return {"name": self.name, "features": self.refs, "description": self.description,
                "tags": dict(self.tags), "owner": self.owner}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> FeatureService:
        """The service a stored spec describes."""
        grouped: dict[str, list[str]] = {}
        for ref in spec["features"]:
            view, name = ref.split(":", 1)
            grouped.setdefault(view, []).append(name)
        selections = [FeatureSelection(view, tuple(names)) for view, names in grouped.items()]
        return cls(spec["name"], selections, spec.get("description", ""), spec.get("tags", {}), spec.get("owner"))


KINDS: dict[str, type[Definition]] = {cls.kind: cls for cls in (Entity, FeatureView, FeatureService)}


def definition_from_spec(kind: str, spec: dict[str, Any]) -> Entity | FeatureView | FeatureService:
    """Rebuild a stored definition of ``kind``."""
    return KINDS[kind].from_spec(spec)  # type: ignore[attr-defined, no-any-return]
